"""Concurrency per key across every supervisor (``key_limits`` table): at most N running
jobs per ``concurrency_key`` (``enqueue(..., concurrency_key="customer:42")``).

A limit applies to the keys a pattern matches (``jobtui limit key:customer:* 2``, fnmatch
patterns; each matching key gets its own N), to every key of one task's jobs
(``@task(key_concurrency=2)``, scope ``task:NAME``) or of one queue's jobs
(``jobtui limit emails 2 --per-key``, scope ``queue:NAME``). When several apply, the tightest
holds. Running jobs are counted per key whatever their task, in the claim's transaction
(flow.py), so one key's backlog never holds back another key's jobs, and no key ever runs
more than its limit, however many supervisors claim.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable

import peewee

from .base import BaseModel, UTCDateTime, now_default

_RUNNING_KEYS = """SELECT concurrency_key, count(*) FROM jobs
WHERE status = 'running' AND concurrency_key IS NOT NULL
GROUP BY concurrency_key"""


class KeyLimit(BaseModel):
    """One limit: ``scope`` is ``key:PATTERN``, ``task:NAME`` or ``queue:NAME``."""

    scope = peewee.CharField(max_length=320, primary_key=True)
    max_running = peewee.IntegerField(null=True)  # NULL: lifted by an operator
    declared = peewee.BooleanField(default=False)  # from @task(key_concurrency=)
    updated_at = UTCDateTime(default=now_default)

    class Meta:
        table_name = "key_limits"


class KeyRules:
    """The key limits in force, as a claim (or a reader) applies them."""

    def __init__(self, rows: Iterable[tuple[str, int]]) -> None:
        self.patterns: list[tuple[str, int]] = []
        self.exact: dict[str, int] = {}
        self.tasks: dict[str, int] = {}
        self.queues: dict[str, int] = {}
        for scope, limit in rows:
            kind, _, rest = scope.partition(":")
            if kind == "task":
                self.tasks[rest] = int(limit)
            elif kind == "queue":
                self.queues[rest] = int(limit)
            elif any(c in rest for c in "*?["):
                self.patterns.append((rest, int(limit)))
            else:
                self.exact[rest] = int(limit)
        self._cache: dict[str, int | None] = {}

    def __bool__(self) -> bool:
        return bool(self.patterns or self.exact or self.tasks or self.queues)

    def for_key(self, key: str) -> int | None:
        """The tightest key rule (pattern or exact) for ``key``; None: no key rule."""
        if key in self._cache:
            return self._cache[key]
        found = [limit for pat, limit in self.patterns if fnmatch.fnmatchcase(key, pat)]
        if key in self.exact:
            found.append(self.exact[key])
        self._cache[key] = out = min(found) if found else None
        return out

    def limit(self, key: str, task: str, queue: str | None = None) -> int | None:
        """The limit on ``key`` for a job of ``task`` in ``queue`` (None: unlimited)."""
        found = [x for x in (self.for_key(key), self.tasks.get(task), self.queues.get(queue))
                 if x is not None]  # fmt: skip
        return min(found) if found else None


def running_per_key(db: peewee.Database) -> dict[str, int]:
    """Running jobs per concurrency key, fleet-wide (few rows: running jobs only)."""
    return {key: int(n) for key, n in db.execute_sql(_RUNNING_KEYS).fetchall()}


def key_scope(name: str) -> str:
    """Check ``key:PATTERN``, ``task:NAME`` or ``queue:NAME``."""
    kind, sep, rest = str(name).partition(":")
    if not sep or kind not in ("key", "task", "queue") or not rest or len(rest) > 300:
        raise ValueError(f"a key limit names key:PATTERN, task:NAME or queue:NAME, not {name!r}")
    return f"{kind}:{rest}"


def set_key_limit(
    name: str, limit: int | None, *, declared: bool = False, db: peewee.Database | None = None
) -> str:
    """At most ``limit`` running jobs per key matching ``key:PATTERN`` (or per key of the
    jobs of ``task:NAME``) across the fleet; None lifts it. Returns the scope. Running jobs
    are never stopped by a lower limit: it holds back claims.

    ``declared``: a task's ``key_concurrency=`` (never overrides an operator's setting)."""
    from .clock import utcnow
    from .rates import write_settings

    scope = key_scope(name)
    if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 1):
        raise ValueError(f"a key limit is a whole number of at least 1 (or none), not {limit!r}")

    def write(db: peewee.Database) -> None:
        row = KeyLimit.get_or_none(KeyLimit.scope == scope)
        if declared and row is not None and not row.declared:
            return  # the operator's word stands
        if row is None:
            if limit is not None:
                KeyLimit.create(scope=scope, max_running=limit, declared=declared,
                                updated_at=utcnow())  # fmt: skip
        elif limit is None and (declared or not row.declared):
            row.delete_instance()
        else:
            KeyLimit.update(max_running=limit, declared=declared, updated_at=utcnow()).where(
                KeyLimit.scope == scope).execute()  # fmt: skip

    write_settings(write, [KeyLimit], db)
    return scope


def list_key_limits(db: peewee.Database | None = None) -> list[dict]:
    """Every key limit with the keys at it now (``status --json``, ``jobtui limit``)."""
    from .clock import iso_utc
    from .store import get_database

    db = get_database(db)
    with db.bind_ctx([KeyLimit]):
        rows = list(KeyLimit.select().order_by(KeyLimit.scope))
    running = running_per_key(db) if rows else {}
    out = []
    for row in rows:
        rules = KeyRules([(row.scope, row.max_running)] if row.max_running else [])
        busy = {}
        if row.scope.startswith("key:") and row.max_running:
            busy = {k: n for k, n in running.items() if rules.for_key(k) is not None}
        out.append({"scope": row.scope, "limit": row.max_running, "declared": bool(row.declared),
                    "running": busy, "updated_at": iso_utc(row.updated_at)})  # fmt: skip
    return out
