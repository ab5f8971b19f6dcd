"""The task catalog: what every supervisor registered, so a job keeps its task's settings
however it was enqueued (DESIGN.md, Python API).

A process that enqueues by name — a web application, ``jobtui enqueue``, a cron fire, a
batch callback — has not imported the task, so it cannot know that the task says
``max_retries=0`` or ``queue="ux"``. Supervisors publish their registry here when they start
(a reload is a fresh start), one row per (task, supervisor), kept after the supervisor
stops: an enqueue while no supervisor runs still finds the defaults.

A job row also records which options its enqueuer did *not* give (``jobs.unset_options``,
a bitmask of ``UNSET_*``). Those hold the catalog's value (or the built-in one) only as a
placeholder: the supervisor that runs the job applies its own registry's defaults to them
(the task's, then its ``--default-*``, then the built-in ones). Precedence: the job's own
option, the task's, the supervisor's, built-in.

A job enqueued by name before any supervisor published its task is marked
``UNSET_QUEUE_UNRESOLVED``: it waits in ``default``, and a supervisor that registers the
task moves it to the task's queue (``rehome_unresolved``; a partial index keeps that
look-up empty-cheap), so a ``--queue ux=1`` supervisor is not left waiting for it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping, Sequence

import peewee

from .base import BaseModel, JSONText, UTCDateTime, as_datetime, dumps, now_default
from .clock import sql_timestamp, utcnow
from .dialect import dialect_for

TYPE_CHECKING = False  # typing stays unimported at run time (module memory)
if TYPE_CHECKING:
    from typing import Any

#: Bits of ``jobs.unset_options``: the enqueuer did not give this option.
UNSET_QUEUE = 1
UNSET_PRIORITY = 2
UNSET_MAX_RETRIES = 4
UNSET_TIMEOUT = 8
UNSET_RETRY_DELAY = 16
UNSET_RETRY_BACKOFF = 32
UNSET_RETRY_MAX_DELAY = 64
UNSET_RETRY_JITTER = 128
#: No catalog row knew the task when it was enqueued: its queue is still to be decided.
UNSET_QUEUE_UNRESOLVED = 256
#: Where such a job waits meanwhile (and where a task that names no queue sends its jobs).
DEFAULT_QUEUE = "default"

#: Option name -> its bit: the options a task's defaults (or a supervisor's) can fill.
OPTION_BITS = {
    "queue": UNSET_QUEUE, "priority": UNSET_PRIORITY, "max_retries": UNSET_MAX_RETRIES,
    "timeout": UNSET_TIMEOUT, "retry_delay": UNSET_RETRY_DELAY,
    "retry_backoff": UNSET_RETRY_BACKOFF, "retry_max_delay": UNSET_RETRY_MAX_DELAY,
    "retry_jitter": UNSET_RETRY_JITTER,
}  # fmt: skip
ALL_UNSET = sum(OPTION_BITS.values())
#: Task options the catalog carries (besides the ones with a bit: tags; max_crashes, which
#: is the task's alone: no job column, the supervisor resolves it; and log_level, which a
#: job's row does not hold: its worker reads it from the task).
CATALOG_OPTIONS = (*OPTION_BITS, "tags", "max_crashes", "log_level")

#: How long ``task_defaults`` trusts its copy of the catalog, and a miss (a supervisor may
#: publish a task any moment; a job enqueued meanwhile is rehomed, never lost).
CACHE_TTL_S = 5.0
MISS_TTL_S = 0.5
#: Rows of supervisors that stopped are forgotten this long after they were last seen.
FORGET_AFTER_S = 30 * 86400.0


class TaskCatalog(BaseModel):
    """One task as one supervisor registered it (kept after it stops: "last seen")."""

    task_name = peewee.CharField(max_length=200)
    supervisor_name = peewee.CharField(max_length=200)
    host = peewee.CharField(max_length=255, null=True)
    module = peewee.CharField(max_length=300, null=True)
    queue = peewee.CharField(max_length=100, null=True)
    priority = peewee.IntegerField(null=True)
    max_retries = peewee.IntegerField(null=True)
    timeout = peewee.FloatField(null=True)
    retry_delay = peewee.FloatField(null=True)
    retry_backoff = peewee.FloatField(null=True)
    retry_max_delay = peewee.FloatField(null=True)
    retry_jitter = peewee.BooleanField(null=True)
    defaults = JSONText(null=True)  # every option the task sets, as @task was given it
    seen_at = UTCDateTime(default=now_default)  # when the supervisor published it

    class Meta:
        table_name = "task_catalog"
        primary_key = peewee.CompositeKey("task_name", "supervisor_name")


_OPTION_BIT_ITEMS = tuple(OPTION_BITS.items())


def unset_mask(options: Mapping[str, Any]) -> int:
    """The ``UNSET_*`` bits of the options a caller left out (None counts as left out)."""
    mask = 0
    for name, bit in _OPTION_BIT_ITEMS:  # a loop, not sum(genexpr): it runs every enqueue
        if options.get(name) is None:
            mask |= bit
    return mask


# ------------------------------------------------------------------ publishing


_DELETE_MINE = "DELETE FROM task_catalog WHERE supervisor_name = :me"
_FORGET = """DELETE FROM task_catalog WHERE seen_at < :before
    AND supervisor_name NOT IN (SELECT name FROM supervisors)"""
_INSERT = """INSERT INTO task_catalog (task_name, supervisor_name, host, module, queue, priority,
    max_retries, timeout, retry_delay, retry_backoff, retry_max_delay, retry_jitter,
    defaults, seen_at)
VALUES (:task_name, :supervisor_name, :host, :module, :queue, :priority, :max_retries,
    :timeout, :retry_delay, :retry_backoff, :retry_max_delay, :retry_jitter, :defaults,
    :seen_at)"""


def catalog_row(task_name: str, defaults: Mapping[str, Any], module: str | None) -> dict[str, Any]:
    """What a supervisor publishes of one task (``defaults``: what ``@task`` was given)."""
    known = {k: v for k, v in defaults.items() if k in CATALOG_OPTIONS and v is not None}
    row: dict[str, Any] = {"task_name": task_name, "module": module, "defaults": dumps(known)}
    for name in OPTION_BITS:
        row[name] = known.get(name)
    if row["retry_jitter"] is not None:
        row["retry_jitter"] = bool(row["retry_jitter"])
    return row


def publish_tasks(
    db: peewee.Database, supervisor: str, host: str | None, rows: Iterable[Mapping[str, Any]]
) -> None:
    """Replace ``supervisor``'s catalog rows with ``rows`` (``catalog_row`` each); forget
    rows of long-stopped supervisors. The caller holds a write transaction."""
    dialect = dialect_for(db)
    now = utcnow()
    db.execute_sql(dialect.sql(_DELETE_MINE), {"me": supervisor})
    forget = sql_timestamp(now - _seconds(FORGET_AFTER_S))
    db.execute_sql(dialect.sql(_FORGET), {"before": forget})
    params = [{**row, "supervisor_name": supervisor, "host": host, "seen_at": sql_timestamp(now)}
              for row in rows]  # fmt: skip
    insert = dialect.sql(_INSERT)
    for row in params:
        db.execute_sql(insert, row)
    _cache.pop(id(db), None)


def _seconds(value: float) -> Any:
    from datetime import timedelta

    return timedelta(seconds=value)


#: The condition of the partial index jobs_unresolved_queue (job.py), written alike.
_UNRESOLVED = "(unset_options & 256) <> 0 AND status IN ('pending', 'retrying', 'waiting')"
_PROBE = f"SELECT 1 FROM jobs WHERE {_UNRESOLVED} LIMIT 1"
_REHOME = f"""UPDATE jobs SET queue_name = :queue, unset_options = unset_options - 256
WHERE job_type = :task AND {_UNRESOLVED}"""


def rehome_unresolved(db: peewee.Database, queues: Mapping[str, str]) -> int:
    """Jobs enqueued by name before any supervisor published their task wait in
    ``default``: move those of these tasks (name -> the task's queue) to it. Returns how
    many moved. Cheap when there are none (a partial index holds only such jobs).

    A task whose queue is ``default`` leaves its jobs as they are: they already wait
    where they belong, and rewriting each row to say so cost a supervisor's first start
    behind a backlog enqueued before it (30,000 rows: ~0.3 s before the first claim).
    They keep their mark, so a later version of the task that names a queue still moves
    those that have not run."""
    moving = {task: queue for task, queue in queues.items() if queue != DEFAULT_QUEUE}
    if not moving:
        return 0
    dialect = dialect_for(db)
    # An empty partial index answers "nothing to move" without touching the table.
    probe = db.execute_sql(_PROBE).fetchone()
    if probe is None:
        return 0
    moved = 0
    statement = dialect.sql(_REHOME)
    for task, queue in sorted(moving.items()):
        moved += db.execute_sql(statement, {"task": task, "queue": queue}).rowcount or 0
    return moved


# ------------------------------------------------------------------ reading


_READ = """SELECT c.task_name, c.defaults, c.seen_at,
    CASE WHEN s.name IS NULL THEN 0 ELSE 1 END
FROM task_catalog c LEFT JOIN supervisors s ON s.name = c.supervisor_name"""

#: id(database) -> (read at, task -> defaults, the database): holding the database keeps
#: its id from being reused by another one while the entry lives.
_cache: dict[int, tuple[float, dict[str, dict[str, Any]], peewee.Database]] = {}


def _load(db: peewee.Database) -> dict[str, dict[str, Any]]:
    """Each task's defaults: those of its freshest running supervisor, else the freshest."""
    rows = db.execute_sql(_READ).fetchall()
    rows.sort(key=lambda r: (int(r[3]), as_datetime(r[2]) or utcnow()))  # best last
    out: dict[str, dict[str, Any]] = {}
    for name, defaults, _, _ in rows:
        try:
            value = json.loads(defaults) if isinstance(defaults, str) else defaults
        except ValueError:
            value = None
        out[name] = dict(value) if isinstance(value, dict) else {}
    return out


def task_defaults(name: str, *, db: peewee.Database | str | None = None) -> dict[str, Any] | None:
    """The defaults the catalog holds for task ``name`` ({} when it sets none), or None
    when no supervisor ever published it. Cached a few seconds per database."""
    from .store import get_database

    found = _defaults_of(name, get_database(db))
    return None if found is None else dict(found)


def _defaults_of(name: str, database: peewee.Database) -> dict[str, Any] | None:
    """``task_defaults`` without the copy (the cache's own dict: read, never changed)."""
    now = time.monotonic()
    cached = _cache.get(id(database))
    stale = cached is None or cached[2] is not database or now - cached[0] > CACHE_TTL_S
    if not stale and name not in cached[1]:  # a supervisor may have published it since
        stale = now - cached[0] > MISS_TTL_S
    if stale:
        cached = _cache[id(database)] = (now, _load(database), database)
    return cached[1].get(name)


def with_task_defaults(
    job_types: Sequence[Any], items: Sequence[Mapping[str, Any]], db: peewee.Database
) -> list[dict[str, Any]]:
    """Each item's options with the catalog's defaults for what its caller left unset, and
    the ``unset_options`` mask saying which those were (kept when the caller computed it).
    The catalog is consulted once per task name (the cache's copy, a few seconds old)."""
    found: dict[str, dict[str, Any] | None] = {}
    return [with_task_default(job_type, options, db, found)
            for job_type, options in zip(job_types, items, strict=True)]  # fmt: skip


def with_task_default(
    job_type: Any,
    options: Mapping[str, Any],
    db: peewee.Database,
    found: dict[str, dict[str, Any] | None] | None = None,
) -> dict[str, Any]:
    """One item's ``with_task_defaults`` (``found``: the task names looked up so far)."""
    mask = options.get("unset_options")
    if mask is None:
        mask = unset_mask(options)
    row = dict(options)
    if mask and isinstance(job_type, str):
        if found is None:
            defaults = _defaults_of(job_type, db)
        elif job_type in found:
            defaults = found[job_type]
        else:
            defaults = found[job_type] = _defaults_of(job_type, db)
        if defaults is None:
            if mask & UNSET_QUEUE and row.get("queue") is None:
                mask |= UNSET_QUEUE_UNRESOLVED
        else:
            for name, value in defaults.items():
                if (
                    value is not None
                    and row.get(name) is None
                    and (name == "tags" or mask & OPTION_BITS.get(name, 0))
                ):
                    row[name] = value
    row["unset_options"] = int(mask)
    return row


def list_catalog(
    *, db: peewee.Database | str | None = None, now: Any = None
) -> list[dict[str, Any]]:
    """Every task in the catalog with its defaults and the supervisors that registered it
    (alive or not, last seen): what ``jobtui tasks`` and the console show."""
    from .clock import iso_utc
    from .heartbeats import stale_after_s
    from .store import get_database
    from .worker import Supervisor

    database = get_database(db)
    now = now or utcnow()
    live: dict[str, tuple[Any, Any]] = {}
    for name, beat, interval in (
        Supervisor.select(Supervisor.name, Supervisor.heartbeat_at,
                          Supervisor.heartbeat_interval_s).tuples().execute(database)
    ):  # fmt: skip
        live[name] = (as_datetime(beat), interval)
    tasks: dict[str, dict[str, Any]] = {}
    best = _load(database)
    rows = TaskCatalog.select().order_by(TaskCatalog.task_name, TaskCatalog.supervisor_name)
    for row in rows.execute(database):
        entry = tasks.setdefault(row.task_name, {
            "name": row.task_name, "module": row.module,
            "defaults": best.get(row.task_name, {}), "supervisors": [],
        })  # fmt: skip
        beat, interval = live.get(row.supervisor_name, (None, None))
        alive = beat is not None and (now - beat).total_seconds() <= stale_after_s(interval)
        seen = max(beat, row.seen_at) if beat is not None and row.seen_at else row.seen_at
        entry["supervisors"].append({
            "name": row.supervisor_name, "host": row.host, "alive": alive,
            "last_seen": iso_utc(seen) if seen else None,
        })  # fmt: skip
    for entry in tasks.values():
        entry["supervisors"].sort(key=lambda s: (not s["alive"], s["name"]))  # live first
        d = entry["defaults"]
        entry.update({k: d.get(k) for k in CATALOG_OPTIONS})
        entry["alive"] = any(s["alive"] for s in entry["supervisors"])
        entry["last_seen"] = max((s["last_seen"] or "" for s in entry["supervisors"]), default=None)
    return [tasks[name] for name in sorted(tasks)]


def catalog_task_names(db: peewee.Database | str | None = None) -> list[str]:
    """Every task name the catalog knows (the console's enqueue form offers them)."""
    from .store import get_database

    database = get_database(db)
    rows = database.execute_sql("SELECT DISTINCT task_name FROM task_catalog").fetchall()
    return sorted(row[0] for row in rows)
