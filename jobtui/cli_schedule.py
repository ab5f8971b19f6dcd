"""``jobtui schedule add|list|remove|pause|resume|run-now``: cron schedules from the shell."""

from __future__ import annotations

import argparse

from jobtui.cli_format import age, priority_option, table, to_json
from jobtui.models.clock import utcnow
from jobtui.models.errors import JobtuiError


def add_schedule_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("schedule", help="cron schedules: add, list, remove, pause, resume, run-now")
    actions = p.add_subparsers(dest="schedule_command", metavar="ACTION", required=True)
    a = actions.add_parser("add", help="create or update a schedule (by name)")
    a.add_argument("name")
    a.add_argument("cron", help='five fields, or six with seconds last: "*/5 * * * *"')
    a.add_argument("task")
    a.add_argument("--args", metavar="JSON")
    a.add_argument("--kwargs", metavar="JSON")
    a.add_argument("--queue")
    a.add_argument("--priority", type=priority_option, metavar="N|LEVEL")
    a.add_argument("--timezone", default="UTC")
    a.add_argument("--catch-up", choices=("skip", "once"), default="skip")
    a.add_argument("--disabled", action="store_true")
    lst = actions.add_parser("list", help="schedules with their next fire times")
    lst.add_argument("--json", action="store_true")
    a.add_argument("--json", action="store_true", help="what was done")
    for name, text in (("remove", "delete a schedule"), ("pause", "stop firing"),
                       ("resume", "fire again"), ("run-now", "enqueue its job now")):  # fmt: skip
        verb = actions.add_parser(name, help=text)
        verb.add_argument("name")
        verb.add_argument("--json", action="store_true", help="what was done")
    p.set_defaults(func=run_schedule_command)


def run_schedule_command(args: argparse.Namespace) -> int:
    from jobtui.models import audit, scheduling
    from jobtui.models.schedule import Schedule

    command = args.schedule_command
    if command == "add":
        from jobtui.api import schedule
        from jobtui.cli import _json_arg

        upcoming = schedule(
            args.name, args.cron, args.task, args=_json_arg(args.args, "--args", list),
            kwargs=_json_arg(args.kwargs, "--kwargs", dict), timezone=args.timezone,
            catch_up=args.catch_up, enabled=not args.disabled, queue=args.queue,
            priority=args.priority,
        )  # fmt: skip
        if args.json:
            print(to_json({"action": "schedule add", "schedule": args.name, "next_run": upcoming}))
        else:
            print(f"schedule {args.name}: next run "
                  f"{upcoming.isoformat(sep=' ', timespec='seconds')} UTC")  # fmt: skip
    elif command == "list":
        rows = list(Schedule.select().order_by(Schedule.name))
        if args.json:
            from jobtui.models.queries import row_dict

            print(to_json([row_dict(r) for r in rows]))
        elif not rows:
            print("no schedules")
        else:
            now = utcnow()
            table(["name", "cron", "tz", "task", "next", "last", "last job", "enabled"], [
                [r.name, r.cron, r.timezone, r.job_type,
                 r.next_fire_at.isoformat(sep=" ", timespec="seconds") if r.next_fire_at else "-",
                 age(r.last_fire_at, now), r.last_job_id or "-", "yes" if r.enabled else "no"]
                for r in rows
            ])  # fmt: skip
    elif command == "remove":
        audit.audited("schedule remove", args.name, lambda: scheduling.remove_schedule(args.name))
        _done(args, f"removed schedule {args.name}")
    elif command in ("pause", "resume"):
        audit.audited(f"schedule {command}", args.name,
                      lambda: scheduling.set_schedule_enabled(args.name, command == "resume"))  # fmt: skip
        past = "paused" if command == "pause" else "resumed"
        _done(args, f"{past} schedule {args.name}", enabled=command == "resume")
    elif command == "run-now":
        job_id = audit.audited("schedule run-now", args.name,
                               lambda: scheduling.run_schedule_now(args.name), count=1,
                               arguments=lambda job: {"job": job})  # fmt: skip
        _done(args, job_id, job_id=job_id)
    else:  # pragma: no cover - argparse refuses unknown actions
        raise JobtuiError(f"unknown schedule action {command}")
    return 0


def _done(args: argparse.Namespace, text: str, **fields: object) -> None:
    """The sentence, or with ``--json`` the action, the schedule and what changed."""
    if args.json:
        print(to_json({"action": f"schedule {args.schedule_command}", "schedule": args.name,
                       **fields}))  # fmt: skip
    else:
        print(text)


__all__ = ["add_schedule_parser", "run_schedule_command"]
