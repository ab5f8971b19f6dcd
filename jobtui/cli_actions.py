"""``jobtui cancel|delete|retry|purge``: the verbs that change jobs, for people and scripts.

Each takes whole ids or pieces of them (``cli_ids``) and, with ``--json``, prints what it
did per id instead of a sentence, so a script need not parse English::

    {"action": "cancel", "jobs": [{"id": "...", "result": "cancelled"}, ...],
     "dependants_cancelled": ["..."]}

The exit status is the same either way: 1 when nothing could be done (or, for delete and
retry, when some named job was skipped).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

from jobtui.cli_format import priority_option, to_json
from jobtui.cli_ids import resolve_ids
from jobtui.models import actions, audit
from jobtui.models.actions import ActionResult
from jobtui.models.errors import JobtuiError


def plural(n: int, word: str = "job") -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def action_json(
    action: str,
    ids: Sequence[str],
    result: ActionResult,
    done: str,
    skipped: str,
    *,
    kill: bool = False,
) -> dict[str, Any]:
    """Per id: ``done`` for the jobs the action changed, ``asked_to_stop`` /
    ``killing`` for running jobs asked to stop (cancel), ``skipped`` otherwise, with the
    reason; and the dependants cancelled in turn."""
    changed, requested = set(result.changed_ids), set(result.requested_ids)
    jobs = []
    for job_id in dict.fromkeys(ids):
        if job_id in changed:
            jobs.append({"id": job_id, "result": done})
        elif job_id in requested:
            jobs.append({"id": job_id, "result": "killing" if kill else "asked_to_stop"})
        else:
            jobs.append({"id": job_id, "result": "skipped", "reason": skipped})
    return {
        "action": action,
        "jobs": jobs,
        "dependants_cancelled": list(result.cascaded_ids),
    }


def cmd_cancel(args: argparse.Namespace) -> int:
    ids = resolve_ids(args.ids)
    result = audit.audited("kill" if args.kill else "cancel", ids,
                           lambda: actions.cancel_jobs(ids, reason=args.reason, kill=args.kill),
                           arguments={"reason": args.reason})  # fmt: skip
    if args.json:
        print(to_json(action_json("cancel", ids, result, "cancelled", "already ended or stopping",
                                  kill=args.kill)))  # fmt: skip
    else:
        print(result.cancel_summary(kill=args.kill))
    return 0 if result.changed or result.requested else 1


def cmd_delete(args: argparse.Namespace) -> int:
    ids = resolve_ids(args.ids)
    result = audit.audited("delete", ids, lambda: actions.delete_jobs(ids))
    deleted = set(result.changed_ids)
    running = [job_id for job_id in ids if job_id not in deleted]
    if args.json:
        print(to_json(action_json("delete", ids, result, "deleted", "running (cancel first)")))
    else:
        print(f"deleted {plural(result.changed)}")
    if result.skipped:
        print(f"jobtui: not deleted, still running (cancel first): {', '.join(running)}",
              file=sys.stderr)  # fmt: skip
        return 1
    return 0


def _edits(args: argparse.Namespace) -> bool:
    return any(getattr(args, name) is not None for name in ("args", "kwargs", "priority", "queue"))


def cmd_edit_retry(args: argparse.Namespace) -> int:
    """``retry ID --args JSON --kwargs JSON --priority N --queue Q``: one job, edited."""
    from jobtui.api import retry
    from jobtui.cli import _json_arg

    if args.all_failed or len(args.ids) != 1:
        raise JobtuiError(
            "retry with --args/--kwargs/--priority/--queue edits one job: give one id"
        )
    job_id = resolve_ids(args.ids)[0]
    edited = _json_arg(args.args, "--args", list), _json_arg(args.kwargs, "--kwargs", dict)
    job = retry(job_id, args=edited[0], kwargs=edited[1], priority=args.priority, queue=args.queue)
    if args.json:
        print(to_json({"action": "edit", "jobs": [{"id": job.id, "result": "retrying"}],
                       "parameters": job.parameters, "priority": job.priority,
                       "queue": job.queue_name}))  # fmt: skip
    else:
        print(f"retrying 1 job, edited: {job.id}")
    return 0


def cmd_retry(args: argparse.Namespace) -> int:
    from jobtui.models import queries

    if _edits(args):
        return cmd_edit_retry(args)
    if args.all_failed:
        if args.ids:
            raise JobtuiError("retry takes job ids or --all-failed, not both")
        ids = [job.id for job in queries.list_jobs(status="failed", limit=1_000_000)]
    elif args.ids:
        ids = resolve_ids(args.ids)
    else:
        raise JobtuiError("retry needs job ids or --all-failed")
    result = audit.audited("retry", ids, lambda: actions.retry_jobs(ids),
                           arguments={"all_failed": True} if args.all_failed else None)  # fmt: skip
    reason = "not failed or cancelled (or its unique key is taken)"
    if args.json:
        print(to_json(action_json("retry", ids, result, "retrying", reason)))
    else:
        print(f"retrying {plural(result.changed)}")
    if result.skipped:
        print(f"jobtui: {plural(result.skipped)} not failed or cancelled (or unique key taken)",
              file=sys.stderr)  # fmt: skip
        return 1
    return 0


def cmd_purge(args: argparse.Namespace) -> int:
    """Purge reports a count, not ids: it may delete millions of rows. ``--failed`` deletes
    failed jobs only (seed 004's ``queue:clear-failed``); without it, completed and
    cancelled ones older than ``--older-than``."""
    from datetime import timedelta

    from jobtui.models.retention import prune_jobs, purge_failed_jobs

    if args.older_than is not None and args.older_than < 0:
        raise JobtuiError("--older-than must be >= 0")
    age = None if args.older_than is None else timedelta(days=args.older_than)
    if args.failed:
        deleted = purge_failed_jobs(queue=args.queue, older_than=age)
    elif age is None:
        raise JobtuiError("purge needs --older-than DAYS (or --failed)")
    else:
        deleted = prune_jobs(older_than=age, queue=args.queue)
    statuses = ["failed"] if args.failed else ["completed", "cancelled"]
    if deleted:  # batches of their own transactions: recorded once they are all done
        audit.record("purge", " and ".join(statuses) + " jobs", deleted,
                     arguments={"older_than_days": args.older_than, "queue": args.queue})  # fmt: skip
    if args.json:
        print(to_json({"action": "purge", "deleted": deleted, "older_than_days": args.older_than,
                       "queue": args.queue, "statuses": statuses}))  # fmt: skip
    else:
        where = f" of queue {args.queue}" if args.queue else ""
        age_text = "" if age is None else f", older than {args.older_than:g} days"
        print(f"purged {plural(deleted)} ({' and '.join(statuses)}{where}{age_text})")
    return 0


def add_action_parsers(sub: argparse._SubParsersAction) -> None:
    """cancel, delete, retry and purge, each with ``--json``."""
    p = sub.add_parser("cancel", help="cancel jobs (running ones are asked to stop)")
    p.add_argument("ids", nargs="+", metavar="ID", help="ids, or 8+ hex digits of one's start/end")
    p.add_argument("--reason", help="the error the cancelled jobs end with")
    p.add_argument("--kill", action="store_true",
                   help="stop running jobs' processes now instead of asking them first")  # fmt: skip
    p.add_argument("--json", action="store_true", help="what was done, per id")
    p.set_defaults(func=cmd_cancel)

    p = sub.add_parser("delete", help="delete jobs that are not running")
    p.add_argument("ids", nargs="+", metavar="ID")
    p.add_argument("--json", action="store_true", help="what was done, per id")
    p.set_defaults(func=cmd_delete)

    p = sub.add_parser("retry", help="run failed or cancelled jobs again (one edited: --args ...)")
    p.add_argument("ids", nargs="*", metavar="ID")
    p.add_argument("--all-failed", action="store_true")
    p.add_argument("--args", metavar="JSON", help="edit and retry: new positional arguments")
    p.add_argument("--kwargs", metavar="JSON", help="edit and retry: new keyword arguments")
    p.add_argument("--priority", type=priority_option, metavar="N|LEVEL",
                   help="edit and retry: a new priority")  # fmt: skip
    p.add_argument("--queue", help="edit and retry: another queue")
    p.add_argument("--json", action="store_true", help="what was done, per id")
    p.set_defaults(func=cmd_retry)

    p = sub.add_parser("purge", help="delete old completed and cancelled jobs, or failed ones")
    p.add_argument("--older-than", type=float, metavar="DAYS")
    p.add_argument("--failed", action="store_true", help="failed jobs only")
    p.add_argument("--queue", help="of this queue only")
    p.add_argument("--json", action="store_true", help="how many were deleted")
    p.set_defaults(func=cmd_purge)


__all__ = ["action_json", "add_action_parsers", "plural"]
