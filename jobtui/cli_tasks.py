"""``jobtui tasks``: the task catalog — every task supervisors registered, its defaults,
and which supervisors serve it (alive or not, last seen)."""

from __future__ import annotations

import argparse
from datetime import datetime

from jobtui.cli_format import age, clip, table, to_json
from jobtui.models.clock import utcnow


def add_tasks_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("tasks", help="the task catalog: tasks, their defaults, their supervisors")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run_tasks_command)


def _option(value: object) -> str:
    return "-" if value is None else str(value)


def run_tasks_command(args: argparse.Namespace) -> int:
    from jobtui.models.catalog import list_catalog

    tasks = list_catalog()
    if args.json:
        print(to_json(tasks))
        return 0
    if not tasks:
        print("no tasks: no supervisor has published any yet")
        return 0
    now = utcnow()
    rows = []
    for task in tasks:
        serving = ", ".join(
            s["name"] + ("" if s["alive"] else " (stopped)") for s in task["supervisors"]
        )
        seen = task["last_seen"]
        moment = None if not seen else datetime.fromisoformat(seen).replace(tzinfo=None)
        rows.append([
            clip(task["name"], 48), _option(task["queue"] or "default"),
            _option(task["priority"]), _option(task["max_retries"]),
            _option(task["retry_delay"]), _option(task["timeout"]),
            _option(task.get("max_crashes")), clip(serving, 60), age(moment, now),
        ])  # fmt: skip
    table(["task", "queue", "pri", "retries", "delay", "timeout", "crashes", "supervisors",
           "seen"], rows)  # fmt: skip
    return 0
