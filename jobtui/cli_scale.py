"""``jobtui scale [--supervisor NAME] QUEUE N``: a running supervisor's workers for a queue.

The request goes through the database (models/scaling.py): the command writes it on the
supervisor's row, wakes the supervisor, and waits until the row says the new count —
workers added at once, workers removed after their current job (never killed mid-job).
"""

from __future__ import annotations

import argparse
import sys

from jobtui.cli_format import to_json
from jobtui.models.errors import JobtuiError
from jobtui.models.store import get_database

#: How long ``scale`` waits for the supervisor by default: a lost wake-up is made up for
#: at the supervisor's next heartbeat (5 s by default).
DEFAULT_WAIT_S = 15.0


def cmd_scale(args: argparse.Namespace) -> int:
    from jobtui.models.scaling import (
        MAX_WORKERS_PER_QUEUE,
        ScaleError,
        check_count,
        describe_queues,
        pick_supervisor,
        request_scale,
        wait_applied,
    )

    if not args.queue.strip():
        raise JobtuiError("a queue name cannot be empty")
    try:
        count = int(args.count)
    except ValueError:
        raise JobtuiError(f"N {args.count!r}: a whole number of workers") from None
    if args.timeout <= 0:
        raise JobtuiError("--timeout must be > 0")
    if not 0 <= count <= MAX_WORKERS_PER_QUEUE:
        raise JobtuiError(f"N must be from 0 to {MAX_WORKERS_PER_QUEUE}, got {count}")
    db = get_database()
    target = pick_supervisor(db, args.queue, args.supervisor)
    check_count(target, args.queue, count)
    name, was = target["name"], target["queues"].get(args.queue)
    from jobtui.models import audit

    audit.audited("scale", args.queue, lambda: request_scale(db, name, args.queue, count),
                  arguments={"supervisor": name, "workers": count}, db=db)  # fmt: skip
    applied = wait_applied(db, name, args.queue, count, args.timeout)
    if applied is None:
        raise ScaleError(f"supervisor {name} did not apply the request within "
                         f"{args.timeout:g} s; it stays asked, and applies when the "
                         "supervisor reads it (is the supervisor stopped?)")  # fmt: skip
    if args.json:
        print(to_json({"action": "scale", "supervisor": name, "queue": args.queue,
                       "workers": count, "was": was, "queues": applied["queues"],
                       "autoscale": {q: list(b) for q, b in applied["autoscale"].items()}}))  # fmt: skip
        return 0
    before = "no workers of its own" if was is None else f"{was}"
    print(
        f"supervisor {name}: queue {args.queue} {before} -> {count} worker(s)"
        + (" (the extra ones stop after their current job)" if was and count < was else "")
    )
    print(f"  workers now: {describe_queues(applied['queues'], applied['autoscale'])}",
          file=sys.stdout)  # fmt: skip
    return 0


def add_scale_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("scale", help="change a running supervisor's workers for a queue")
    p.add_argument("queue", help="the queue (* for the shared workers)")
    p.add_argument("count", metavar="N", help="its workers from now on (0 to 256)")
    p.add_argument("--supervisor", metavar="NAME",
                   help="which supervisor (needed when several serve the queue)")  # fmt: skip
    p.add_argument("--timeout", type=float, default=DEFAULT_WAIT_S, metavar="S",
                   help=f"how long to wait for the supervisor (default {DEFAULT_WAIT_S:g})")  # fmt: skip
    p.add_argument("--json", action="store_true", help="what was done")
    p.set_defaults(func=cmd_scale)


__all__ = ["add_scale_parser", "cmd_scale"]
