"""Per-queue concurrency limits, across every supervisor (``queues.concurrency``).

``--queue NAME=N`` bounds one supervisor's workers; a limit bounds the queue itself: at most
N of its jobs running (claimed) at once, whoever runs them — for a rate-limited API, a
database that takes so many connections. The main claim leaves limited queues out (its
filter: ``concurrency IS NOT NULL`` unless ``:capped``); they are claimed here first, each
up to its room (the limit minus its running jobs, counted in the claiming transaction), so a
limited queue sharing workers with busy ones still gets its share, and never more.

Counting and claiming must not interleave between supervisors. SQLite's write lock
serialises them already; on PostgreSQL each limited queue's row is locked for the claim
(``FOR UPDATE SKIP LOCKED``: a queue another supervisor is claiming from right now is
skipped this turn rather than waited for, so a stopped supervisor holding that lock never
stalls our turn — its heartbeats included).
"""

from __future__ import annotations

from collections.abc import Sequence

import peewee

from .dialect import Dialect

_ANY_LIMIT = "SELECT 1 FROM queues WHERE concurrency IS NOT NULL LIMIT 1"

_LIMITED = """SELECT name, concurrency FROM queues
WHERE concurrency IS NOT NULL AND NOT paused{served}
ORDER BY name"""

_RUNNING = """SELECT queue_name, count(*) FROM jobs
WHERE status = 'running' AND queue_name IN ({names})
GROUP BY queue_name"""


def any_limits(db: peewee.Database) -> bool:
    """Whether some queue has a limit (the supervisor asks once per poll interval)."""
    return db.execute_sql(_ANY_LIMIT).fetchone() is not None


def rooms(
    db: peewee.Database, dialect: Dialect, queues: Sequence[str] | None
) -> list[tuple[str, int]]:
    """(queue, how many more of its jobs may be claimed now) for the limited queues among
    ``queues`` (all if None) that have room, locked for this transaction on PostgreSQL."""
    p = "?" if dialect.name == "sqlite" else "%s"
    served = "" if queues is None else f" AND name IN ({', '.join([p] * len(queues))})"
    sql = _LIMITED.format(served=served)
    if dialect.name != "sqlite":
        sql += " FOR UPDATE SKIP LOCKED"
    limited = db.execute_sql(sql, list(queues or ())).fetchall()
    if not limited:
        return []
    names = [name for name, _ in limited]
    running = dict(
        db.execute_sql(_RUNNING.format(names=", ".join([p] * len(names))), names).fetchall()
    )
    out = []
    for name, limit in limited:
        room = int(limit) - int(running.get(name, 0))
        if room > 0:
            out.append((name, room))
    return out


def set_queue_limit(name: str, limit: int | None, *, db: peewee.Database | None = None) -> None:
    """At most ``limit`` jobs of queue ``name`` running at once across every supervisor
    (None: no limit). Running jobs are never stopped by a lower limit; it holds back claims."""
    from .actions import set_queue_control

    if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 1):
        raise ValueError(f"a queue limit is a whole number of at least 1 (or none), not {limit!r}")
    set_queue_control(name, db=db, concurrency=None if limit is None else int(limit))
