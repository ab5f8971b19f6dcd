"""Why a due job waits: the rate or key limit holding it back, in the operator's words
("rate 10/s on queue emails", "key customer:42 at 2/2"), for ``jobtui show``, the console
and ``status --json``. Read without locks, as of now: a reader's view, not a claim's."""

from __future__ import annotations

from collections.abc import Iterable

import peewee

from .clock import utcnow
from .flow import EPOCH
from .key_limits import KeyRules, running_per_key
from .rates import Window, describe_scope, format_rate

TYPE_CHECKING = False  # typing stays unimported at run time (module memory)
if TYPE_CHECKING:
    from typing import Any

_RATES = "SELECT name, max_starts, period_s, state FROM rates WHERE max_starts IS NOT NULL"
_KEY_LIMITS = "SELECT scope, max_running FROM key_limits WHERE max_running IS NOT NULL"


class FlowView:
    """The rates and key limits as they stand, read once for many jobs."""

    def __init__(self, db: peewee.Database) -> None:
        self.now = (utcnow() - EPOCH).total_seconds()
        self.rates: dict[str, tuple[str, Window]] = {}
        try:
            rate_rows = db.execute_sql(_RATES).fetchall()
            key_rows = db.execute_sql(_KEY_LIMITS).fetchall()
        except peewee.DatabaseError:  # an older schema (before version 8): nothing limits
            rate_rows, key_rows = [], []
        for name, count, period, state in rate_rows:
            if not count or count < 1 or not period or period <= 0:
                continue  # as the claim does (flow.py)
            self.rates[name] = (format_rate(count, period), Window.load(count, period, state))
        self.rules = KeyRules(key_rows)
        self.running = running_per_key(db) if self.rules else {}

    def __bool__(self) -> bool:
        return bool(self.rates or self.rules)

    def reason(
        self, queue: str, task: str, rate_key: str | None, concurrency_key: str | None
    ) -> str | None:
        """What holds back a due job of this queue, task and keys now (None: nothing)."""
        for scope in (f"queue:{queue}", f"task:{task}", rate_key and f"key:{rate_key}"):
            found = self.rates.get(scope) if scope else None
            if found is not None and found[1].allowance(self.now) <= 0:
                return f"rate {found[0]} on {describe_scope(scope)}"
        if concurrency_key is not None:
            limit = self.rules.limit(concurrency_key, task, queue)
            running = self.running.get(concurrency_key, 0)
            if limit is not None and running >= limit:
                return f"key {concurrency_key} at {running}/{limit}"
        return None

    def rates_of(self, kind: str) -> dict[str, str]:
        """``{name: "10/s"}`` of one kind of scope (queue, task, key)."""
        prefix = kind + ":"
        return {n[len(prefix):]: text for n, (text, _) in self.rates.items()
                if n.startswith(prefix)}  # fmt: skip


def held_reason(
    job: Any, view: FlowView | None = None, db: peewee.Database | None = None
) -> str | None:
    """Why this job (a Job, or anything with its fields) waits, when it is due and waits
    on a rate or key limit; None otherwise."""
    if getattr(job, "status", None) not in ("pending", "retrying"):
        return None
    now = utcnow()
    run_at = getattr(job, "run_at", None)
    retry_at = getattr(job, "next_retry_at", None)
    if (run_at is not None and run_at > now) or (retry_at is not None and retry_at > now):
        return None  # not due yet: its due time says why it waits
    if view is None:
        from .store import get_database

        view = FlowView(get_database(db))
    return view.reason(job.queue_name, job.job_type, getattr(job, "rate_key", None),
                       getattr(job, "concurrency_key", None))  # fmt: skip


def held_reasons(jobs: Iterable[Any], db: peewee.Database | None = None) -> dict[str, str]:
    """``{job id: reason}`` for the jobs among ``jobs`` a rate or key limit holds back."""
    from .store import get_database

    jobs = list(jobs)
    if not jobs:
        return {}
    view = FlowView(get_database(db))
    if not view:
        return {}
    out = {}
    for job in jobs:
        reason = held_reason(job, view)
        if reason is not None:
            out[job.id] = reason
    return out
