"""``jobtui batch list|show|cancel``: batches from the shell (seed 003's batch monitoring).

A batch's callbacks run once all its jobs have ended (``jobtui.batching``); from here an
operator sees how far each batch has got, lists its jobs, and cancels what is left of one
(the batch then ends, and its on_failure/on_complete callbacks run as for any failure).
"""

from __future__ import annotations

import argparse
from typing import Any

from jobtui.cli_format import age, field, table, to_json
from jobtui.models.clock import utcnow


def add_batch_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("batch", help="batches: list, show, cancel")
    actions = p.add_subparsers(dest="batch_command", metavar="ACTION", required=True)
    lst = actions.add_parser("list", help="open batches, newest first (--all: finished too)")
    lst.add_argument("--all", action="store_true", help="finished batches too")
    lst.add_argument("--limit", type=int, default=20)
    lst.add_argument("--json", action="store_true")
    show = actions.add_parser("show", help="one batch: its progress, callbacks and jobs")
    show.add_argument("id")
    show.add_argument("--limit", type=int, default=50, help="jobs listed (newest first)")
    show.add_argument("--json", action="store_true")
    cancel = actions.add_parser("cancel", help="cancel every job of a batch not ended yet")
    cancel.add_argument("id")
    cancel.add_argument("--reason", help="the error its jobs end with")
    cancel.add_argument("--kill", action="store_true",
                        help="stop running jobs' processes now instead of asking them first")  # fmt: skip
    cancel.add_argument("--json", action="store_true", help="what was done, per job")
    p.set_defaults(func=run_batch_command)


def _resolve(text: str) -> str:
    """The full id of a batch from what was typed (as job ids are: ``cli_ids``)."""
    from jobtui.cli_ids import resolve_id
    from jobtui.models.batch import Batch

    return resolve_id(text, model=Batch, noun="batch")


def run_batch_command(args: argparse.Namespace) -> int:
    from jobtui.batching import batch_status, open_batches

    if args.batch_command == "list":
        batches = open_batches(limit=args.limit, finished=args.all)
        if args.json:
            print(to_json(batches))
        elif not batches:
            print("no open batches" if not args.all else "no batches")
        else:
            now = utcnow()
            table(["batch", "done", "total", "failed", "age", "outcome"], [
                [b["id"], b["done"], b["total"], b["failed"], age(b["created_at"], now),
                 b["outcome"] or "-"] for b in batches
            ])  # fmt: skip
        return 0
    batch_id = _resolve(args.id)
    if args.batch_command == "show":
        return _show(batch_status(batch_id), args)
    return _cancel(batch_id, args)


def _show(status: dict[str, Any], args: argparse.Namespace) -> int:
    from jobtui.cli import JOB_HEADERS, _job_rows
    from jobtui.models.queries import list_jobs

    jobs = list_jobs(batch_id=status["id"], limit=args.limit)
    if args.json:
        print(to_json({**status, "jobs": [job.to_dict() for job in jobs]}))
        return 0
    counts = ", ".join(f"{n} {s}" for s, n in sorted(status["counts"].items())) or "no jobs"
    callbacks = ", ".join(f"{k} {status[k]}" for k in ("on_success", "on_failure", "on_complete")
                          if status[k]) or "none"  # fmt: skip
    print(f"batch      {status['id']}")
    print(f"progress   {status['done']}/{status['total']} ended ({counts})")
    print(f"outcome    {status['outcome'] or 'not finished'}")
    print(f"callbacks  {field(callbacks)}")
    if jobs:
        print()
        table(JOB_HEADERS, _job_rows(jobs))
    return 0


def _cancel(batch_id: str, args: argparse.Namespace) -> int:
    from jobtui.models import actions
    from jobtui.models.job import Job
    from jobtui.models.status import FINAL

    ids = [row.id for row in Job.select(Job.id).where(
        (Job.batch_id == batch_id) & Job.status.not_in(list(FINAL)))]  # fmt: skip
    if not ids and not args.json:
        print(f"batch {batch_id}: no job left to cancel")
        return 1
    reason = args.reason or f"batch {batch_id} cancelled by operator"
    from jobtui.models import audit

    result = audit.audited("kill" if args.kill else "cancel", ids,
                           lambda: actions.cancel_jobs(ids, reason=reason, kill=args.kill),
                           arguments={"batch": batch_id, "reason": args.reason})  # fmt: skip
    if args.json:
        from jobtui.cli_actions import action_json

        done = action_json("cancel", ids, result, "cancelled", "already ended or stopping",
                           kill=args.kill)  # fmt: skip
        print(to_json({**done, "batch": batch_id}))
    else:
        print(f"batch {batch_id}: {result.cancel_summary(kill=args.kill)}")
    return 0 if result.changed or result.requested else 1


__all__ = ["add_batch_parser", "run_batch_command"]
