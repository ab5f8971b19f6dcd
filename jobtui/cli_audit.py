"""``jobtui audit [--since 1h|ISO] [--limit N] [--json]``: who did what to the jobs.

Lists the audit log (models/audit.py), newest first: when, who (user and host, or an API
caller's ``actor=``), where (cli, console, api), the action, its target and arguments,
and how many jobs it changed. Targets and arguments are job text: shown with their
control characters made visible, never acted on by the terminal.
"""

from __future__ import annotations

import argparse
import json
import re
from datetime import UTC, datetime, timedelta

from jobtui.cli_format import age, clip, table, to_json
from jobtui.models.clock import to_utc_naive, utcnow

_SPAN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$", re.IGNORECASE)
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def since_option(text: str) -> datetime:
    """``--since``: a span back from now (``90s``, ``15m``, ``1h``, ``2d``, ``1w``) or an
    ISO 8601 moment (local time unless it has ``Z`` or an offset); naive UTC."""
    match = _SPAN.match(text)
    if match:
        return utcnow() - timedelta(seconds=float(match[1]) * _UNIT_S[match[2].lower()])
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is neither a span (30m, 1h, 2d) nor an ISO 8601 time") from None  # fmt: skip
    return to_utc_naive(moment if moment.tzinfo is not None else moment.astimezone())


def describe_arguments(arguments: object) -> str:
    """The arguments as one line of compact JSON (``{}`` shown as nothing)."""
    if not arguments:
        return ""
    return json.dumps(arguments, ensure_ascii=False, separators=(",", ":"), default=str)


def cmd_audit(args: argparse.Namespace) -> int:
    from jobtui.models.audit import list_audit

    rows = list_audit(since=args.since, limit=args.limit)
    if args.json:
        print(to_json([row.to_dict() for row in rows]))
        return 0
    if not rows:
        print("no audit entries" + (" in that time" if args.since else ""))
        return 0
    now = utcnow()
    table(["when", "age", "who", "where", "action", "target", "jobs", "arguments"], [
        [r.at.replace(tzinfo=UTC).astimezone().isoformat(sep=" ", timespec="seconds"),
         age(r.at, now), clip(f"{r.actor}@{r.host}" if r.host else r.actor, 32), r.where,
         r.action, clip(r.target, 40), "" if r.count is None else f"{r.count:,}",
         clip(describe_arguments(r.arguments), 60)]
        for r in rows
    ])  # fmt: skip
    return 0


def add_audit_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("audit", help="the operator actions taken, newest first")
    p.add_argument("--since", type=since_option, metavar="SPAN|ISO",
                   help="only since then: 30m, 1h, 2d, 1w, or an ISO 8601 time")  # fmt: skip
    p.add_argument("--limit", type=int, default=100, help="at most this many (default 100)")
    p.add_argument("--json", action="store_true", help="a list of entries")
    p.set_defaults(func=cmd_audit)


__all__ = ["add_audit_parser", "describe_arguments", "since_option"]
