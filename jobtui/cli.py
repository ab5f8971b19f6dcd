"""``jobtui``: admin commands over the job store (and, with no command, the console).

Every command takes ``--database URL`` before the subcommand. A user mistake — bad JSON,
an unknown id, an unreachable database, a SQLite file in a missing folder, a database
written by a newer jobtui — prints one line on stderr and exits 1; never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import peewee

from jobtui import __version__
from jobtui.cli_format import (
    VisibleOutput,
    age,
    clip,
    duration,
    field,
    megabytes,
    moment_option,
    priority_option,
    table,
    to_json,
)
from jobtui.models import queries
from jobtui.models.clock import utcnow
from jobtui.models.errors import JobtuiError
from jobtui.models.outcomes import QUARANTINED
from jobtui.models.store import classify_error, use_database
from jobtui.models.visible import visible, visible_line


class UsageError(JobtuiError):
    """Bad command-line input."""


def _json_arg(text: str | None, name: str, kind: type) -> Any:
    if text is None:
        return None
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise UsageError(f"{name} is not valid JSON: {exc}") from None
    if not isinstance(value, kind):
        raise UsageError(f"{name} must be a JSON {'array' if kind is list else 'object'}")
    return value


def _reference(text: str | None) -> tuple[str, str] | None:
    if text is None:
        return None
    kind, sep, ident = text.partition(":")
    if not sep or not kind or not ident:
        raise UsageError(f"--reference takes TYPE:ID, got {text!r}")
    return kind, ident


# -------------------------------------------------------------------- commands


def cmd_enqueue(args: argparse.Namespace) -> int:
    from jobtui.api import enqueue
    from jobtui.cli_ids import resolve_ids

    options = dict(
        queue=args.queue, priority=args.priority, delay=args.delay, scheduled_for=args.at,
        max_retries=args.max_retries, timeout=args.timeout, unique_key=args.unique_key,
        depends_on=resolve_ids(args.depends_on) if args.depends_on else None,
        user_id=args.user_id, reference=_reference(args.reference), tags=args.tag or None,
        title=args.title, description=args.description, deadline=args.deadline,
        metadata=_json_arg(args.metadata, "--metadata", dict), rate_key=args.rate_key,
        concurrency_key=args.concurrency_key,
    )  # fmt: skip
    if args.stdin:
        from jobtui.cli_stdin import run_stdin_enqueue

        return run_stdin_enqueue(args, {k: v for k, v in options.items() if v is not None})
    job = enqueue(args.task, args=_json_arg(args.args, "--args", list),
                  kwargs=_json_arg(args.kwargs, "--kwargs", dict), **options)  # fmt: skip
    if job is None:
        print("not enqueued: the task's should_enqueue declined", file=sys.stderr)
        return 0
    print(to_json(job.to_dict()) if args.json else job.id)
    return 0


def _job_rows(jobs: Sequence[Any]) -> list[list[Any]]:
    now = utcnow()
    rows = []
    for job in jobs:
        progress = f"{job.progress_percentage:.0f}%" if job.status == "running" else ""
        if job.status == "running" and job.started_at is None:
            progress = "waiting"  # prefetched: claimed, begins when its worker is free
        state = job.status
        if state == "failed" and job.error_type == QUARANTINED:
            state = "failed (quarantined)"  # its runs killed their worker max_crashes times
        rows.append([job.id, job.queue_name, clip(job.job_type, 32), state, job.priority,
                     f"{job.attempt}/{job.max_retries + 1}", progress, age(job.created_at, now),
                     clip(job.worker_name, 20), clip(job.error_message, 40)])  # fmt: skip
    return rows


JOB_HEADERS = ["id", "queue", "task", "state", "pri", "try", "progress", "age", "worker", "error"]


def cmd_jobs(args: argparse.Namespace) -> int:
    """Lists at most ``--limit`` jobs; when more match, says so on stderr (stdout stays the
    table, and ``--json`` stays a plain list of jobs)."""
    from jobtui.cli_options import statuses_option

    batch = None
    if args.batch:
        from jobtui.cli_ids import resolve_id
        from jobtui.models.batch import Batch

        batch = resolve_id(args.batch, model=Batch, noun="batch")
    jobs = queries.list_jobs(status=statuses_option(args.status), queue=args.queue,
                             task=args.task, user_id=args.user, tag=args.tag,
                             reference=args.reference, batch_id=batch,
                             limit=args.limit + 1)  # fmt: skip
    if len(jobs) > args.limit:
        jobs = jobs[: args.limit]
        print(f"jobtui: showing the newest {args.limit} matching jobs; more match "
              "(raise --limit to see them)", file=sys.stderr)  # fmt: skip
    if args.json:
        print(to_json([job.to_dict() for job in jobs]))
    elif not jobs:
        print("no jobs")
    else:
        table(JOB_HEADERS, _job_rows(jobs))
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from jobtui.cli_ids import resolve_id

    job = queries.get_job(resolve_id(args.id))
    attempts = list(job.attempts.order_by(job.attempts.model.attempt))
    from jobtui.models.held import held_reason

    held = held_reason(job)
    if args.json:
        data = job.to_dict()
        data["held"] = held
        data["depends_on"] = job.depends_on
        data["attempts"] = [queries.row_dict(a) for a in attempts]
        print(to_json(data))
        return 0
    from jobtui.models.aging import describe_priority

    fields = job.to_dict()
    fields["priority"] = describe_priority(job.priority, job.base_priority)  # 0 (aged +3)
    width = max(len(k) for k in fields)
    for key, value in fields.items():
        if value is None or key in ("error_traceback", "base_priority"):
            continue
        print(f"{key.ljust(width)}  {field(value)}")
    if held:
        print(f"{'held'.ljust(width)}  {field(held)}")
    if job.depends_on:
        print(f"{'depends_on'.ljust(width)}  {', '.join(job.depends_on)}")
    if attempts:
        print("\nattempts:")
        table(["n", "started", "took", "worker", "pid", "outcome", "error"], [
            [a.attempt, a.started_at.isoformat(sep=" ", timespec="seconds") if a.started_at else "-",
             duration((a.ended_at - a.started_at).total_seconds()) if a.started_at and a.ended_at else "-",
             a.worker_name or "-", a.pid or "-", a.outcome, clip(a.error_message, 60)]
            for a in attempts
        ])  # fmt: skip
        for a in attempts:  # edited since (jobtui retry ID --args): what it ran with
            if a.parameters is not None:
                print(f"attempt {a.attempt} ran with  {field(a.parameters)}")
    if job.error_traceback:
        print("\ntraceback:\n" + visible(job.error_traceback.rstrip()))
    return 0


def _parse_iso(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text).replace(tzinfo=None)


def _supervisor_rows(supervisors: list[dict[str, Any]]) -> tuple[list[str], list[list[Any]]]:
    from jobtui.models.heartbeats import stale_after_s
    from jobtui.models.scaling import describe_queues

    now = utcnow()
    rows = []

    def beat(row: dict[str, Any], limit: float) -> str:
        """The heartbeat's age, marked when it is older than 3 of its supervisor's
        intervals (the process is stopped, frozen or gone), as the console shows it."""
        moment = _parse_iso(row.get("heartbeat_at"))
        stale = moment is None or (now - moment).total_seconds() > limit
        return age(moment, now) + (" STALE" if stale else "")

    for sup in supervisors:
        limit = stale_after_s(sup.get("heartbeat_interval_s"))
        groups = describe_queues(sup.get("queues"), sup.get("autoscale"))  # its workers
        rows.append([sup["name"], "supervisor", sup["host"], sup["pid"], sup["state"], groups,
                     f"{sup['cpu_percent']:.0f}%", megabytes(sup["rss_bytes"]), beat(sup, limit),
                     sup["jobs_done"], sup["jobs_failed"]])  # fmt: skip
        for worker in sup.get("workers", []):
            rows.append([f"  {worker['name']}", "worker", worker["host"], worker["pid"],
                         worker["state"], worker.get("current_job_id") or "",
                         f"{worker['cpu_percent']:.0f}%", megabytes(worker["rss_bytes"]),
                         beat(worker, limit), worker["jobs_done"], worker["jobs_failed"]])  # fmt: skip
    headers = [
        "name",
        "kind",
        "host",
        "pid",
        "state",
        "job",
        "cpu",
        "rss",
        "beat",
        "done",
        "failed",
    ]
    return headers, rows


def _aging_text(period: float | None) -> str:
    """A queue's own aging period; empty when it follows the supervisors'."""
    from jobtui.models.aging import describe_period

    return "" if period is None else describe_period(period)


def cmd_status(args: argparse.Namespace) -> int:
    from jobtui.batching import open_batches

    stats = queries.queue_stats()
    supervisors = queries.list_supervisors()
    batches = open_batches()
    from jobtui.models.key_limits import list_key_limits
    from jobtui.models.rates import list_rates

    rates, key_limits = list_rates(), list_key_limits()
    if args.json:
        print(to_json({"queues": stats, "supervisors": supervisors, "batches": batches,
                       "rates": rates, "key_limits": key_limits}))  # fmt: skip
        return 0
    if stats:
        from jobtui.cli_queues import print_queue_table

        print_queue_table(stats)
    else:
        print("no jobs")
    if rates or key_limits:
        print()
        table(["scope", "rate / key limit", "now"], [
            *[[r["name"], r["rate"], ""] for r in rates],
            *[[k["scope"], f"{k['limit']} per key",
               ", ".join(f"{key} {n}/{k['limit']}" for key, n in sorted(k["running"].items()))]
              for k in key_limits],
        ])  # fmt: skip
    if batches:
        print()
        table(["batch", "done", "total", "failed"], [
            [b["id"], b["done"], b["total"], b["failed"]]
            for b in batches
        ])  # fmt: skip
    print()
    if supervisors:
        table(*_supervisor_rows(supervisors))
    else:
        print("no supervisors running")
    return 0


def cmd_workers(args: argparse.Namespace) -> int:
    supervisors = queries.list_supervisors()
    if args.json:
        print(to_json(supervisors))
    elif not supervisors:
        print("no supervisors running")
    else:
        table(*_supervisor_rows(supervisors))
    return 0


def cmd_schedule(args: argparse.Namespace) -> int:
    from jobtui.cli_schedule import run_schedule_command

    return run_schedule_command(args)


# -------------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="jobtui",
        description="Watch and steer jobtui jobs. With no command, opens the console.",
    )
    parser.add_argument("--database", metavar="URL",
                        help="sqlite:////abs/path.db or postgresql://user@host/db "
                             "(default: $JOBTUI_DATABASE, then ~/.local/share/jobtui/jobtui.db)")  # fmt: skip
    parser.add_argument("--demo", action="store_true", help="open the console on a demo")
    parser.add_argument("--read-only", action="store_true", help="console without actions")
    parser.add_argument("--version", action="version", version=f"jobtui {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("enqueue", help="enqueue a job and print its id")
    p.add_argument("task")
    p.add_argument(
        "--args", metavar="JSON", help="positional arguments, a JSON array: '[1, \"a\"]'"
    )
    p.add_argument("--kwargs", metavar="JSON", help="keyword arguments, a JSON object")
    p.add_argument("--queue")
    p.add_argument("--priority", type=priority_option, metavar="N|LEVEL",
                   help="an integer, higher first, or low, normal, high, critical")  # fmt: skip
    p.add_argument("--delay", type=float, metavar="S", help="due in S seconds")
    p.add_argument("--at", type=moment_option, metavar="WHEN",
                   help="due at this ISO 8601 time (local unless it has Z or an offset)")  # fmt: skip
    p.add_argument("--max-retries", type=int)
    p.add_argument("--timeout", type=float, metavar="S")
    p.add_argument("--unique-key")
    p.add_argument("--rate-key", metavar="KEY", help="its start counts against key:KEY's rate")
    p.add_argument("--concurrency-key", metavar="KEY", help="limited by jobtui limit key:...")
    p.add_argument("--depends-on", nargs="+", metavar="ID")
    p.add_argument("--user-id")
    p.add_argument("--reference", metavar="TYPE:ID")
    p.add_argument("--tag", action="append")
    p.add_argument("--title")
    p.add_argument("--description")
    p.add_argument("--deadline", type=float, metavar="S",
                   help="not started within S seconds: cancelled as expired")  # fmt: skip
    p.add_argument(
        "--metadata", metavar="JSON", help="anything to keep with the job, a JSON object"
    )
    p.add_argument("--stdin", action="store_true",
                   help='one job per line of JSON on stdin: {"args": [...], "kwargs": {...}, '
                        '"priority": 5}; 1,000 per transaction; prints the count')  # fmt: skip
    p.add_argument("--json", action="store_true", help="the job (with --stdin: the ids)")
    p.set_defaults(func=cmd_enqueue)

    p = sub.add_parser("status", help="queues, batches, supervisors and workers")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("jobs", help="list jobs, newest first")
    p.add_argument("--status", metavar="S[,S...]",
                   help="statuses, or the console's aliases (dead, done, queued, ...)")  # fmt: skip
    p.add_argument("--queue")
    p.add_argument("--task")
    p.add_argument("--user", help="the jobs of this user_id")
    p.add_argument("--tag", help="the jobs with this tag")
    p.add_argument("--reference", metavar="TYPE[:ID]", help="the jobs about this object")
    p.add_argument("--batch", metavar="ID", help="the jobs of this batch")
    p.add_argument("--limit", type=int, default=50,
                   help="at most this many (a note on stderr says when more match)")  # fmt: skip
    p.add_argument("--json", action="store_true", help="a plain list of jobs")
    p.set_defaults(func=cmd_jobs)

    p = sub.add_parser("show", help="one job with its attempts")
    p.add_argument("id")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_show)

    p = sub.add_parser("workers", help="supervisors and their workers")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_workers)

    from jobtui.cli_actions import add_action_parsers
    from jobtui.cli_queues import add_queue_parsers

    add_action_parsers(sub)
    add_queue_parsers(sub)
    from jobtui.cli_flow import add_flow_parsers

    add_flow_parsers(sub)

    from jobtui.cli_audit import add_audit_parser
    from jobtui.cli_batch import add_batch_parser
    from jobtui.cli_db import add_db_parser
    from jobtui.cli_logs import add_logs_parsers
    from jobtui.cli_metrics import add_metrics_parser
    from jobtui.cli_scale import add_scale_parser
    from jobtui.cli_schedule import add_schedule_parser
    from jobtui.cli_serve import add_serve_parser
    from jobtui.cli_tasks import add_tasks_parser

    add_schedule_parser(sub)
    add_batch_parser(sub)
    add_tasks_parser(sub)
    add_scale_parser(sub)
    add_logs_parsers(sub)
    add_db_parser(sub)
    add_audit_parser(sub)
    add_metrics_parser(sub)
    add_serve_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command is None:
            return open_console(args, parser)
        from jobtui.cli_options import check_options, reads_only

        check_options(args)
        if not getattr(args, "opens_database_itself", False):  # jobtui db: unmigrated
            use_database(args.database, create=not reads_only(args))
        from jobtui.models import audit

        with audit.scope(where="cli"):  # every action of a command is audited as the CLI's
            return _run_visibly(args)
    except JobtuiError as exc:
        print(f"jobtui: {visible_line(exc)}", file=sys.stderr)
        return 1
    except peewee.PeeweeException as exc:
        print(f"jobtui: {visible_line(classify_error(exc))}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


def _run_visibly(args: argparse.Namespace) -> int:
    """Run the command with stdout and stderr behind ``VisibleOutput`` (restored after)."""
    saved = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = VisibleOutput(sys.stdout), VisibleOutput(sys.stderr)
    try:
        return args.func(args)
    finally:
        sys.stdout, sys.stderr = saved


def open_console(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """The Textual console, when it is installed in this version; else the help."""
    try:
        from jobtui.tui import run_console
    except ImportError:
        parser.print_help()
        return 0
    return run_console(args.database, demo=args.demo, read_only=args.read_only)


if __name__ == "__main__":
    sys.exit(main())
