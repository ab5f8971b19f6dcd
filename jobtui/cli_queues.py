"""``jobtui pause|resume|limit|aging QUEUE``: queue controls, refused for a queue nobody named.

A queue exists once something names it: a job (``jobs.queue_name``), a supervisor that
serves it (``supervisors.queues``), a task default or schedule that sends jobs to it, or
an earlier pause or limit (``queues``). Writing a control row for any other name made a
phantom queue, listed by ``status`` for good, that a typo (``pause emial``) silently
created while the real queue kept running. Such a name is refused with the known queues
listed; ``--new`` names a queue ahead of its first job or supervisor on purpose.
"""

from __future__ import annotations

import argparse
import json

from jobtui.cli_format import to_json
from jobtui.models.errors import JobtuiError
from jobtui.models.queue import Queue
from jobtui.models.ready_reads import queue_has_jobs, queue_names
from jobtui.models.schedule import Schedule
from jobtui.models.status import ALL_STATUSES
from jobtui.models.store import get_database
from jobtui.models.worker import Supervisor

#: queues named in a refusal, at most
SHOWN_QUEUES = 20


class UnknownQueue(JobtuiError):
    """No job, supervisor, schedule or control row names this queue."""


def _loaded(value: object) -> object:
    return json.loads(value) if isinstance(value, str) else value


def _named_elsewhere() -> set[str]:
    """Queues that supervisors serve, or route tasks to, and that schedules send jobs to
    (a few rows each: read whole)."""
    names = {row[0] for row in Queue.select(Queue.name).tuples()}
    for queues, tasks in Supervisor.select(Supervisor.queues, Supervisor.tasks).tuples():
        queues, tasks = _loaded(queues), _loaded(tasks)
        if isinstance(queues, dict):
            names |= {str(name) for name in queues if name != "*"}
        if isinstance(tasks, dict):
            names |= {t["queue"] for t in tasks.values() if isinstance(t, dict) and t.get("queue")}
    for (options,) in Schedule.select(Schedule.options).tuples():
        options = _loaded(options)
        if isinstance(options, dict) and options.get("queue"):
            names.add(str(options["queue"]))
    return names


def queue_is_known(name: str) -> bool:
    """Whether anything names queue ``name``. The jobs part is a probe per index (the
    status index and the claim indexes), so it costs the same on a table of any size."""
    if name == "default" or name in _named_elsewhere():
        return True
    return queue_has_jobs(get_database(), name)


def known_queues() -> list[str]:
    """Every queue something names (the error path only)."""
    return sorted(_named_elsewhere() | {"default"} | set(queue_names(get_database())))


def require_known_queue(name: str, *, new: bool = False) -> None:
    """Refuse a queue nothing names (unless ``new``), listing the ones that exist."""
    if not name.strip():
        raise JobtuiError("a queue name cannot be empty")
    if new or queue_is_known(name):
        return
    names = known_queues()
    shown = ", ".join(names[:SHOWN_QUEUES]) + (" …" if len(names) > SHOWN_QUEUES else "")
    raise UnknownQueue(
        f"no queue {name!r}: no job, supervisor or schedule names it (known: {shown}); "
        "--new names a queue before its first job"
    )


def cmd_pause(args: argparse.Namespace, paused: bool = True) -> int:
    from jobtui.models import actions, audit

    require_known_queue(args.queue, new=args.new)
    audit.audited("pause" if paused else "resume", args.queue,
                  lambda: actions.set_queue_paused(args.queue, paused))  # fmt: skip
    if args.json:
        print(to_json({"action": "pause" if paused else "resume", "queue": args.queue,
                       "paused": paused}))  # fmt: skip
    else:
        print(f"{'paused' if paused else 'resumed'} queue {args.queue}")
    return 0


def cmd_resume(args: argparse.Namespace) -> int:
    return cmd_pause(args, paused=False)


def cmd_limit(args: argparse.Namespace) -> int:
    from jobtui.models.limits import set_queue_limit

    text = args.limit.strip().lower()
    try:
        limit = None if text == "none" else int(text)
        if limit is not None and limit < 1:
            raise ValueError(limit)
    except ValueError:
        raise JobtuiError(f"limit {args.limit!r}: a whole number of at least 1, or none") from None
    if args.queue.startswith(("key:", "task:")) or args.per_key:  # cli_flow.py
        from jobtui.cli_flow import cmd_key_limit

        if args.per_key and not args.queue.startswith(("key:", "task:")):
            require_known_queue(args.queue, new=args.new)
            args.queue = f"queue:{args.queue}"
        return cmd_key_limit(args, limit)
    from jobtui.models import audit

    require_known_queue(args.queue, new=args.new)
    audit.audited("limit", args.queue, lambda: set_queue_limit(args.queue, limit),
                  arguments={"limit": "none" if limit is None else limit})  # fmt: skip
    if args.json:
        print(to_json({"action": "limit", "queue": args.queue, "limit": limit}))
    elif limit is None:
        print(f"queue {args.queue}: no limit")
    else:
        print(f"queue {args.queue}: at most {limit} running at once, across every supervisor")
    return 0


def alert_text(alerts: dict[str, dict]) -> str:
    """A queue's alerts in a cell: "wait 42s>30s", "failed 40%>10%" (empty: none)."""
    parts = []
    for kind, state in sorted(alerts.items()):
        value, threshold = state.get("value") or 0, state.get("threshold") or 0
        if kind == "wait":
            parts.append(f"wait {value:.0f}s>{threshold:g}s")
        else:
            parts.append(f"failed {value:.0f}%>{threshold:g}%")
    return " ".join(parts)


def print_queue_table(stats: dict[str, dict]) -> None:
    """The queues of ``queue_stats()`` as a table (``status`` and ``queues``)."""
    from jobtui.cli import _aging_text
    from jobtui.cli_format import duration, table

    table(["queue", *ALL_STATUSES, "latency", "done 1h", "failed 1h", "/min", "avg run",
           "run p95", "workers", "alert", "paused", "limit", "rate", "fair keys", "aging"], [
        [name, *[q["counts"][s] for s in ALL_STATUSES], duration(q["latency_s"]),
         f"{q['completed_1h']:,}", f"{q['failed_1h']:,}", f"{q['per_min_1h']:.1f}",
         duration(q["avg_run_s"]), duration(q["run_p95_s"]), q["workers"],
         alert_text(q.get("alerts") or {}), "yes" if q["paused"] else "",
         "" if q["limit"] is None else q["limit"], q.get("rate") or "",
         q.get("fair_keys") or "", _aging_text(q.get("priority_aging_s"))]
        for name, q in stats.items()
    ])  # fmt: skip


def cmd_queues(args: argparse.Namespace) -> int:
    """Per queue: counts, latency, the last hour, paused, limit and alerts."""
    from jobtui.models import queries

    stats = queries.queue_stats()
    if args.json:
        print(to_json(stats))
    elif stats:
        print_queue_table(stats)
    else:
        print("no queues")
    return 0


def cmd_aging(args: argparse.Namespace) -> int:
    """``jobtui aging QUEUE 10m|off|default``: the queue's priority aging period, for every
    supervisor (``default``: as each supervisor's --priority-aging)."""
    from jobtui.models.aging import describe_period, parse_period, set_queue_aging

    text = args.period.strip().lower()
    try:
        period = None if text == "default" else parse_period(text)
    except ValueError as exc:
        raise JobtuiError(f"aging {args.period!r}: {exc}") from None
    require_known_queue(args.queue, new=args.new)
    from jobtui.models import audit

    audit.audited("aging", args.queue, lambda: set_queue_aging(args.queue, period),
                  arguments={"priority_aging": text})  # fmt: skip
    if args.json:
        print(to_json({"action": "aging", "queue": args.queue, "priority_aging_s": period}))
    elif period is None:
        print(f"queue {args.queue}: priority aging as each supervisor's --priority-aging")
    elif period == 0:
        print(f"queue {args.queue}: no priority aging")
    else:
        print(f"queue {args.queue}: a job waiting longer than {describe_period(period)} "
              "gains one priority step per period")  # fmt: skip
    return 0


def add_queue_parsers(sub: argparse._SubParsersAction) -> None:
    """queues, and pause, resume, limit and aging, each with ``--new`` and ``--json``."""
    p = sub.add_parser("queues", help="per queue: counts, latency, last hour, alerts")
    p.add_argument("--json", action="store_true", help="queue name -> its figures")
    p.set_defaults(func=cmd_queues)

    for name, text, func in (("pause", "stop claiming from a queue", cmd_pause),
                             ("resume", "claim from a paused queue again", cmd_resume)):  # fmt: skip
        p = sub.add_parser(name, help=text)
        p.add_argument("queue")
        p.add_argument("--new", action="store_true", help="a queue no job names yet")
        p.add_argument("--json", action="store_true", help="what was done")
        p.set_defaults(func=func)

    p = sub.add_parser("limit", help="cap a queue's (or each key's) running jobs, fleet-wide")
    p.add_argument("queue", metavar="QUEUE|key:PATTERN|task:NAME")
    p.add_argument("limit", metavar="N|none", help="at most N of its jobs running at once")
    p.add_argument("--per-key", action="store_true",
                   help="a queue's limit per concurrency_key of its jobs, not in all")  # fmt: skip
    p.add_argument("--new", action="store_true", help="a queue no job names yet")
    p.add_argument("--json", action="store_true", help="what was done")
    p.set_defaults(func=cmd_limit)

    p = sub.add_parser("aging", help="raise the priority of a queue's jobs as they wait")
    p.add_argument("queue")
    p.add_argument("period", metavar="PERIOD|off|default",
                   help="one priority step per PERIOD waited (10m, 90s, 1h); off; or "
                   "default: as each supervisor's --priority-aging")  # fmt: skip
    p.add_argument("--new", action="store_true", help="a queue no job names yet")
    p.add_argument("--json", action="store_true", help="what was done")
    p.set_defaults(func=cmd_aging)


__all__ = [
    "add_queue_parsers",
    "alert_text",
    "print_queue_table",
    "known_queues",
    "queue_is_known",
    "require_known_queue",
]
