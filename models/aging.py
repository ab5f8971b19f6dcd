"""Priority aging: a job that waits longer than its queue's aging period gains priority,
one step per period, so a steady stream of high-priority work never starves the
low-priority jobs behind it forever.

The claim stays an index walk on the stored priority: an upkeep step (``age_queue``)
raises the stored ``priority`` of jobs waiting longer than a period to
``base_priority + floor(wait / period)`` (at most ``MAX_STEPS`` steps) and keeps the
priority they were given in ``base_priority``, so the console shows "priority 0 (aged
+3)". The new value depends only on how long the job has waited, so the step gives the
same result whoever runs it; each queue's ``aged_at`` lets one supervisor of several do
it per interval (the others find it done). A job waits from when it was due: its
``run_at``, or the end of its retry's backoff.

Settings: ``jobtui-supervisor --priority-aging 10m`` ages the queues that supervisor
serves; ``jobtui queue NAME --priority-aging 10m`` sets one queue's period for every
supervisor (``off`` turns it off there, ``default`` returns it to the supervisors').
Off by default: no period, no step, today's order.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime, timedelta

import peewee

from .clock import sql_timestamp
from .dialect import Dialect, dialect_for
from .ready_reads import READY_PARTS, ready_queue_names

TYPE_CHECKING = False  # typing stays unimported at run time (module memory)
if TYPE_CHECKING:
    from typing import Any

#: The most steps aging adds to a job's priority.
MAX_STEPS = 1000
#: The shortest aging period accepted (seconds).
MIN_PERIOD_S = 0.1

_UNITS = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}

# How many whole periods a job has waited (at most :max_steps), per engine.
_STEPS = {
    "sqlite": "MIN(:max_steps, CAST((julianday(:now) - julianday(COALESCE(next_retry_at, "
    "run_at))) * 86400.0 / :period AS INTEGER))",
    "postgresql": "LEAST(:max_steps, FLOOR(EXTRACT(EPOCH FROM (CAST(:now AS timestamp) - "
    "COALESCE(next_retry_at, run_at))) / :period)::integer)",
}
_AGE = """UPDATE jobs SET base_priority = COALESCE(base_priority, priority),
    priority = COALESCE(base_priority, priority) + {steps}
WHERE queue_name = :queue AND {half}
    AND COALESCE(next_retry_at, run_at) <= :cutoff
    AND priority < COALESCE(base_priority, priority) + {steps}"""
_ENSURE_QUEUE = """INSERT INTO queues (name, paused, updated_at) VALUES (:queue, :no, :now)
ON CONFLICT DO NOTHING"""
_TAKE_TURN = """UPDATE queues SET aged_at = :now
WHERE name = :queue AND (aged_at IS NULL OR aged_at <= :since)"""
_SETTINGS = "SELECT name, priority_aging_s FROM queues WHERE priority_aging_s IS NOT NULL"
_ANY_SET = "SELECT 1 FROM queues WHERE priority_aging_s > 0 LIMIT 1"


def parse_period(text: str) -> float | None:
    """``10m``, ``90s``, ``1.5h``, ``2d`` or plain seconds -> seconds; ``off`` (or 0) ->
    0 (off); ValueError with a one-line reason otherwise."""
    value = str(text).strip().lower()
    if value in ("off", "none", "0"):
        return 0.0
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([smhd]?)", value)
    if match is None:
        raise ValueError(
            f"an aging period is a number with s, m, h or d (e.g. 10m), or off; not {text!r}"
        )
    seconds = float(match.group(1)) * _UNITS[match.group(2)]
    if 0 < seconds < MIN_PERIOD_S:
        raise ValueError(f"an aging period is at least {MIN_PERIOD_S:g} s, not {text!r}")
    return seconds


def describe_period(seconds: float | None) -> str:
    """``10m`` for 600, ``off`` for 0 or None: how the console and the CLI show it."""
    if not seconds:
        return "off"
    for unit, size in (("d", 86400.0), ("h", 3600.0), ("m", 60.0)):
        if seconds >= size and (seconds / size).is_integer():
            return f"{int(seconds / size)}{unit}"
    return f"{seconds:g}s"


def describe_priority(priority: int, base_priority: int | None) -> str:
    """``0 (aged +3)`` for a job given priority 0 that aging raised to 3; else ``3``."""
    if base_priority is None or base_priority == priority:
        return str(priority)
    return f"{base_priority} (aged {priority - base_priority:+d})"


def queue_aging(db: peewee.Database) -> dict[str, float]:
    """Each queue's own aging period (0: off there); queues absent follow the supervisors."""
    return {name: float(period) for name, period in db.execute_sql(_SETTINGS).fetchall()}


def any_queue_aging(db: peewee.Database) -> bool:
    """Whether some queue has an aging period of its own."""
    return db.execute_sql(_ANY_SET).fetchone() is not None


def set_queue_aging(name: str, seconds: float | None, *, db: peewee.Database | None = None) -> None:
    """Queue ``name`` ages its jobs every ``seconds`` (0: never, whatever the supervisors
    say; None: as its supervisors' ``--priority-aging``)."""
    from .actions import set_queue_control

    if seconds is not None and (seconds < 0 or 0 < seconds < MIN_PERIOD_S):
        raise ValueError(f"an aging period is 0 (off) or at least {MIN_PERIOD_S:g} s")
    set_queue_control(name, db=db, priority_aging_s=seconds)


def waiting_queues(db: peewee.Database) -> list[str]:
    """The queues that have pending or retrying jobs (one index seek per queue)."""
    return ready_queue_names(db)


def aging_periods(
    db: peewee.Database, served: Sequence[str] | None, default_s: float | None
) -> dict[str, float]:
    """The queues to age now and their periods: the served ones (None: every queue with
    waiting jobs) with the default, overridden by each queue's own setting; a queue set to
    0 is left alone. Queues another supervisor serves age only by their own setting."""
    own = queue_aging(db)
    names = list(served) if served is not None else waiting_queues(db)
    periods = {name: default_s for name in names if default_s}
    periods.update({name: period for name, period in own.items() if period})
    return {name: float(p) for name, p in periods.items()  # type: ignore[misc]
            if p and own.get(name, p) != 0}  # fmt: skip


def age_queue(
    db: peewee.Database,
    queue: str,
    period_s: float,
    now: datetime,
    *,
    interval_s: float | None = None,
) -> int | None:
    """Raise the priority of ``queue``'s jobs that waited past ``period_s``; returns how
    many changed, or None when another supervisor aged the queue less than
    ``interval_s`` ago (its turn). The caller holds a write transaction."""
    dialect = dialect_for(db)
    stamp = sql_timestamp(now)
    if interval_s is not None:
        since = sql_timestamp(now - timedelta(seconds=interval_s))
        db.execute_sql(dialect.sql(_ENSURE_QUEUE), {"queue": queue, "no": False, "now": stamp})
        taken = db.execute_sql(dialect.sql(_TAKE_TURN), {"queue": queue, "now": stamp,
                                                         "since": since})  # fmt: skip
        if taken.rowcount != 1:
            return None
    return _age(db, dialect, queue, period_s, now)


def _age(db: peewee.Database, dialect: Dialect, queue: str, period_s: float, now: datetime) -> int:
    params: dict[str, Any] = {
        "queue": queue, "period": float(period_s), "max_steps": MAX_STEPS,
        "now": sql_timestamp(now), "cutoff": sql_timestamp(now - timedelta(seconds=period_s)),
    }  # fmt: skip
    aged = 0
    for half in READY_PARTS:  # each through its claim index (ready_reads.py)
        sql = dialect.sql(_AGE.format(steps=_STEPS[dialect.name], half=half))
        aged += db.execute_sql(sql, params).rowcount or 0
    return aged


def check_interval_s(period_s: float) -> float:
    """How often a queue with this period is looked at: a quarter period, within 0.25 s
    and 30 s (a job gains its step at most that late)."""
    return min(30.0, max(0.25, period_s / 4))
