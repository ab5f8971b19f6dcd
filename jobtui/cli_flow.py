"""``jobtui rate [SCOPE RATE]`` and ``jobtui limit key:PATTERN N``: flow control across the
fleet (models/rates.py, models/key_limits.py).

``jobtui rate`` alone lists the rates; ``jobtui rate emails 10/s`` (a queue),
``jobtui rate task:NAME 100/m`` and ``jobtui rate key:api:stripe 5/s`` set one, ``none``
lifts it. ``jobtui limit key:customer:* 2`` caps each matching concurrency key's running
jobs (``task:NAME`` caps each key of that task's jobs, ``jobtui limit QUEUE 2 --per-key``
each key of that queue's jobs).
"""

from __future__ import annotations

import argparse

from jobtui.cli_format import table, to_json
from jobtui.models.errors import JobtuiError


def cmd_rate(args: argparse.Namespace) -> int:
    from jobtui.models.rates import list_rates, parse_rate, scope_name, set_rate

    if args.scope is None:
        rates = list_rates()
        if args.json:
            print(to_json(rates))
        elif not rates:
            print("no rates")
        else:
            table(["scope", "rate", "from"], [
                [r["name"], r["rate"], "task" if r["declared"] else "operator"] for r in rates
            ])  # fmt: skip
        return 0
    if args.rate is None:
        raise JobtuiError("jobtui rate SCOPE RATE: give the rate too (like 10/s, 100/m, none)")
    try:
        scope = scope_name(args.scope)
        text = args.rate.strip().lower()
        count, period = (None, None) if text == "none" else parse_rate(text)
    except ValueError as exc:
        raise JobtuiError(str(exc)) from None
    if scope.startswith("queue:") and count is not None:
        from jobtui.cli_queues import require_known_queue

        require_known_queue(scope[len("queue:") :], new=args.new)
    from jobtui.models import audit

    audit.audited("rate", scope, lambda: set_rate(scope, text), arguments={"rate": text})
    if args.json:
        print(to_json({"action": "rate", "scope": scope, "rate": None if count is None else text,
                       "max_starts": count, "period_s": period}))  # fmt: skip
    elif count is None:
        print(f"{scope}: no rate")
    else:
        print(f"{scope}: at most {count} starts per {period:g} s, across every supervisor")
    return 0


def cmd_key_limit(args: argparse.Namespace, limit: int | None) -> int:
    """``jobtui limit key:PATTERN N`` / ``task:NAME N`` (called by cli_queues.cmd_limit)."""
    from jobtui.models.key_limits import set_key_limit

    try:
        from jobtui.models import audit

        scope = audit.audited("limit", args.queue, lambda: set_key_limit(args.queue, limit),
                              arguments={"limit": "none" if limit is None else limit})  # fmt: skip
    except ValueError as exc:
        raise JobtuiError(str(exc)) from None
    if args.json:
        print(to_json({"action": "limit", "scope": scope, "limit": limit}))
    elif limit is None:
        print(f"{scope}: no key limit")
    else:
        kind, _, rest = scope.partition(":")
        what = {"key": "each key matching", "task": "each key of the jobs of task",
                "queue": "each key of the jobs of queue"}[kind]  # fmt: skip
        print(f"{scope}: at most {limit} running at once for {what} {rest}, "
              "across every supervisor")  # fmt: skip
    return 0


def add_flow_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("rate", help="limit job starts per period (queue, task:NAME, key:KEY)")
    p.add_argument("scope", nargs="?", metavar="SCOPE",
                   help="a queue, task:NAME or key:KEY (none: list the rates)")  # fmt: skip
    p.add_argument("rate", nargs="?", metavar="N/s|N/m|N/h|none")
    p.add_argument("--new", action="store_true", help="a queue no job names yet")
    p.add_argument("--json", action="store_true", help="what was done, or the rates")
    p.set_defaults(func=cmd_rate)
