"""Cron schedules: validation, next fire times, and firing each tick exactly once.

Every supervisor may run the scheduler. For each nominal fire time a schedule is due for,
it inserts ``(schedule, fire_time)`` under a unique constraint and enqueues the job only
when its insert won (RELIABILITY.md, "Cron"; fact 8: ``RETURNING`` says who won), all in
the caller's transaction, so two supervisors never both enqueue a tick.

Times are evaluated in the schedule's timezone with croniter and stored in UTC. On a DST
change a fixed-time schedule ("30 2 * * *") fires once: the repeated hour of the autumn
change does not fire it again (as Vixie cron), and a time skipped in spring fires at the
first moment after the gap; schedules with a wildcard hour follow real elapsed time.

After downtime the ``catch_up`` policy decides: ``skip`` (ticks older than
``ON_TIME_WINDOW_S`` make no job) or ``once`` (one job, for the latest missed tick, if it
is no older than ``CATCH_UP_WINDOW_S``).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

import peewee

from .base import as_datetime, dumps
from .clock import sql_timestamp, utcnow
from .dialect import dialect_for
from .errors import InvalidJob, JobNotFound
from .store import get_database

TYPE_CHECKING = False  # typing stays unimported at run time (module memory)
if TYPE_CHECKING:
    from typing import Any
    from zoneinfo import ZoneInfo

ON_TIME_WINDOW_S = 10.0
CATCH_UP_WINDOW_S = 24 * 3600.0
MAX_TICKS_PER_PASS = 1000
CATCH_UP_POLICIES = ("skip", "once")
#: A schedule last advanced more than this far in our future was advanced by a clock that
#: has since been set back: its next fire time is recomputed, or it would stall until then.
CLOCK_STEP_S = 60.0

_DUE = """SELECT name, cron, job_type, args, kwargs, options, timezone, catch_up,
    next_fire_at, last_fire_at
FROM schedules WHERE enabled AND (next_fire_at <= :now OR updated_at > :ahead)"""
_CLAIM_FIRE = """INSERT INTO schedule_fires (schedule_name, fire_time, created_at)
VALUES (:name, :fire, :now) ON CONFLICT DO NOTHING RETURNING id"""
_FIRE_JOB = "UPDATE schedule_fires SET job_id = :job WHERE id = :id"
_ADVANCE = """UPDATE schedules SET next_fire_at = :next, last_fire_at = :last,
    last_job_id = COALESCE(:job, last_job_id), updated_at = :now WHERE name = :name"""
_NEXT_DUE = "SELECT MIN(next_fire_at) FROM schedules WHERE enabled"


def _zone(name: str) -> ZoneInfo:
    """The named timezone; zoneinfo is imported here, on first use, so that a supervisor
    without timezone schedules never loads it."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise InvalidJob(f"unknown timezone {name!r}") from exc


def _croniter():
    """croniter, imported on first use (it pulls in dateutil: not every process needs it)."""
    from croniter import CroniterError, croniter

    return croniter, CroniterError


def validate_cron(expression: str) -> None:
    """Refuse an expression croniter cannot use, with croniter's reason."""
    croniter, CroniterError = _croniter()
    if not isinstance(expression, str) or len(expression.split()) not in (5, 6):
        raise InvalidJob(f"bad cron expression {expression!r}: expected 5 or 6 fields")
    try:
        croniter(expression)
    except (CroniterError, ValueError, KeyError) as exc:
        raise InvalidJob(f"bad cron expression {expression!r}: {exc}") from None


def _fixed_hour(expression: str) -> bool:
    return "*" not in expression.split()[1]


def fire_times(
    expression: str,
    timezone: str,
    after: datetime,
    until: datetime,
    limit: int = MAX_TICKS_PER_PASS,
) -> list[datetime]:
    """Nominal fire times (naive UTC) in (after, until], DST-deduplicated, at most ``limit``."""
    zone = _zone(timezone)
    croniter, _ = _croniter()
    start = after.replace(tzinfo=UTC).astimezone(zone)
    it = croniter(expression, start)
    fixed = _fixed_hour(expression)
    out: list[datetime] = []
    while len(out) < limit:
        local = it.get_next(datetime)
        if fixed and getattr(local, "fold", 0) == 1:
            continue  # the autumn hour again: a fixed-time schedule has fired already
        moment = local.astimezone(UTC).replace(tzinfo=None)
        if moment > until:
            break
        if moment > after:
            out.append(moment)
    return out


def latest_fire_time(
    expression: str, timezone: str, after: datetime, until: datetime
) -> datetime | None:
    """The last nominal fire time in (after, until] (naive UTC), or None. Looks back in
    growing windows, so a dense expression never walks every tick since ``after``."""
    top, span = until, timedelta(minutes=1)
    while top > after:
        low = max(after, top - span)
        found = fire_times(expression, timezone, low, top)
        while len(found) == MAX_TICKS_PER_PASS:  # denser than one pass: walk on
            more = fire_times(expression, timezone, found[-1], top)
            if not more:
                break
            found = more
        if found:
            return found[-1]
        top, span = low, span * 16
    return None


def next_fire_time(expression: str, timezone: str, after: datetime) -> datetime:
    """The first nominal fire time after ``after`` (naive UTC)."""
    far = after + timedelta(days=366 * 5)
    try:
        found = fire_times(expression, timezone, after, far, limit=1)
    except ValueError:  # croniter's CroniterBadDateError: no date matches
        found = []
    if not found:
        raise InvalidJob(f"cron expression {expression!r} never fires")
    return found[0]


def upsert_schedule(
    name: str,
    cron: str,
    job_type: str,
    *,
    args: list[Any] | None = None,
    kwargs: Mapping[str, Any] | None = None,
    options: Mapping[str, Any] | None = None,
    timezone: str = "UTC",
    catch_up: str = "skip",
    enabled: bool | None = True,
    db: peewee.Database | None = None,
) -> datetime:
    """Create or update the schedule ``name``; returns its next fire time (UTC).

    Redeclaring an enabled schedule with the same expression and timezone (every
    supervisor start does, for ``@task(cron=)``) keeps its next fire time, so a tick
    missed while no supervisor ran still meets the catch-up policy. ``enabled=None``
    keeps the schedule's state (an operator's pause), new schedules being enabled."""
    from .enqueueing import INTERNAL_OPTIONS, OPTION_NAMES
    from .schedule import Schedule

    if not name or not isinstance(name, str):
        raise InvalidJob("a schedule needs a name")
    if not job_type or not isinstance(job_type, str):
        raise InvalidJob("a schedule needs a task name")
    validate_cron(cron)
    _zone(timezone)
    if catch_up not in CATCH_UP_POLICIES:
        raise InvalidJob(f"catch_up must be one of {', '.join(CATCH_UP_POLICIES)}")
    options = dict(options or {})
    unknown = set(options) - OPTION_NAMES - INTERNAL_OPTIONS
    if unknown:
        raise InvalidJob(f"unknown schedule option(s): {', '.join(sorted(unknown))}")
    try:
        dumps([args or [], kwargs or {}, options])
    except (TypeError, ValueError) as exc:
        raise InvalidJob(f"schedule {name}: arguments are not JSON-serialisable: {exc}") from None
    db = get_database(db)
    now = utcnow()
    upcoming = next_fire_time(cron, timezone, now)
    fields = {Schedule.cron: cron, Schedule.job_type: job_type, Schedule.args: list(args or []),
              Schedule.kwargs: dict(kwargs or {}), Schedule.options: options,
              Schedule.timezone: timezone, Schedule.catch_up: catch_up,
              Schedule.enabled: True if enabled is None else enabled,
              Schedule.next_fire_at: upcoming, Schedule.updated_at: now}  # fmt: skip
    unchanged = ((Schedule.cron == cron) & (Schedule.timezone == timezone) & Schedule.enabled
                 & Schedule.next_fire_at.is_null(False))  # fmt: skip
    update = {**fields, Schedule.next_fire_at: peewee.Case(
        None, [(unchanged, Schedule.next_fire_at)], peewee.EXCLUDED.next_fire_at)}  # fmt: skip
    if enabled is None:
        del update[Schedule.enabled]
    with dialect_for(db).write_transaction(db):
        Schedule.insert({Schedule.name: name, Schedule.created_at: now, **fields}).on_conflict(
            conflict_target=[Schedule.name], update=update
        ).execute(db)
        kept = Schedule.select(Schedule.next_fire_at).where(Schedule.name == name).scalar(db)
    return kept or upcoming


def set_schedule_enabled(name: str, enabled: bool, *, db: peewee.Database | None = None) -> None:
    from .schedule import Schedule

    db = get_database(db)
    row = Schedule.get_or_none(Schedule.name == name)
    if row is None:
        raise JobNotFound(f"no schedule {name}")
    upcoming = next_fire_time(row.cron, row.timezone, utcnow())
    Schedule.update(enabled=enabled, next_fire_at=upcoming, updated_at=utcnow()).where(
        Schedule.name == name
    ).execute(db)


def remove_schedule(name: str, *, db: peewee.Database | None = None) -> None:
    from .schedule import Schedule

    db = get_database(db)
    if Schedule.delete().where(Schedule.name == name).execute(db) == 0:
        raise JobNotFound(f"no schedule {name}")


def _job_options(row: tuple, fire: datetime | None) -> dict[str, Any]:
    import json

    name, _cron, _job_type, args, kwargs, options = row[:6]
    opts = dict(json.loads(options) if isinstance(options, str) else options or {})
    opts.update(args=json.loads(args) if isinstance(args, str) else args or [],
                kwargs=json.loads(kwargs) if isinstance(kwargs, str) else kwargs or {},
                schedule_name=name)  # fmt: skip
    if fire is not None:
        opts["scheduled_for"] = fire
    return opts


def run_schedule_now(name: str, *, db: peewee.Database | None = None) -> str:
    """Enqueue the schedule's job now, outside its fire record; returns the job id."""
    from .enqueueing import insert_jobs
    from .schedule import Schedule

    db = get_database(db)
    row = (Schedule.select(Schedule.name, Schedule.cron, Schedule.job_type, Schedule.args,
                           Schedule.kwargs, Schedule.options)
           .where(Schedule.name == name).tuples().first())  # fmt: skip
    if row is None:
        raise JobNotFound(f"no schedule {name}")
    options = _job_options(
        (row[0], row[1], row[2], dumps(row[3]), dumps(row[4]), dumps(row[5])), None
    )
    return insert_jobs(row[2], [options], database=db)[0][0]


def fire_due_schedules(
    db: peewee.Database, now: datetime | None = None
) -> list[tuple[str, datetime, str]]:
    """Enqueue the due ticks of every schedule, once each; the caller holds a write
    transaction. Returns (schedule, fire time, job id) for the ticks this call fired."""
    from .enqueueing import insert_jobs

    dialect = dialect_for(db)
    now = now or utcnow()
    stamp = sql_timestamp(now)
    fired: list[tuple[str, datetime, str]] = []
    ahead = sql_timestamp(now + timedelta(seconds=CLOCK_STEP_S))
    for row in db.execute_sql(dialect.sql(_DUE), {"now": stamp, "ahead": ahead}).fetchall():
        name, cron, job_type, timezone, catch_up = row[0], row[1], row[2], row[6], row[7]
        next_at = as_datetime(row[8])
        # Only ticks within the policy's window count: look no further back than it (a
        # dense expression after a long downtime would otherwise stop at the first
        # MAX_TICKS_PER_PASS ticks, and "once" would fire a stale one).
        # A next fire time ahead of now means the clock was set back (see _DUE): the
        # window decides alone, and the fire record refuses ticks fired before.
        window = CATCH_UP_WINDOW_S if catch_up == "once" else ON_TIME_WINDOW_S
        floor = now - timedelta(seconds=window)
        since = (floor if next_at > now else max(next_at, floor)) - timedelta(microseconds=1)
        try:
            if catch_up == "once":
                latest = latest_fire_time(cron, timezone, since, now)
                due = [] if latest is None else [latest]
            else:
                due = fire_times(cron, timezone, since, now)
        except (InvalidJob, ValueError):  # CroniterError is a ValueError
            continue  # an expression broken by hand in the table: leave it be
        last_job = None
        for fire in due:
            won = db.execute_sql(dialect.sql(_CLAIM_FIRE), {
                "name": name, "fire": sql_timestamp(fire), "now": stamp}).fetchone()  # fmt: skip
            if won is None:
                continue  # another supervisor fired this tick
            job_id = insert_jobs(job_type, [_job_options(row, fire)], database=db)[0][0]
            db.execute_sql(dialect.sql(_FIRE_JOB), {"job": job_id, "id": won[0]})
            fired.append((name, fire, job_id))
            last_job = job_id
        upcoming = next_fire_time(cron, timezone, now)
        db.execute_sql(dialect.sql(_ADVANCE), {
            "next": sql_timestamp(upcoming), "last": sql_timestamp(due[-1]) if due else row[9],
            "job": last_job, "now": stamp, "name": name})  # fmt: skip
    return fired


def next_schedule_due(db: peewee.Database) -> datetime | None:
    """When the earliest enabled schedule fires next (naive UTC), for the loop's timer."""
    row = db.execute_sql(_NEXT_DUE).fetchone()
    return as_datetime(row[0]) if row else None
