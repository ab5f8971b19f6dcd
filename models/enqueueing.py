"""Writing new jobs: validation first (nothing written on bad input), then one statement.

``insert_jobs`` is the one path every enqueue takes (the API, ``enqueue_many``, the CLI,
``Job.create_job``, cron). Values are checked and serialised before any transaction
opens, so the write lock is held for the INSERT alone.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta

import peewee

from .base import dumps
from .catalog import DEFAULT_QUEUE, with_task_default, with_task_defaults
from .claims import with_lock_retry
from .clock import sql_timestamp, to_utc_naive, utc_stamp, utcnow
from .dialect import dialect_for
from .errors import InvalidJob
from .fairness import add_fair_keys, check_fair_key
from .ids import new_job_id
from .staging import STAGED_BIT, stages
from .store import get_database
from .wakeup import poke

TYPE_CHECKING = False  # typing stays unimported at run time (module memory)
if TYPE_CHECKING:
    from typing import Any

#: Columns an enqueue writes, in order.
INSERT_COLUMNS = (
    "id", "job_type", "status", "title", "description", "parameters", "progress_percentage",
    "max_retries", "retry_count", "priority", "scheduled_for", "user_id", "reference_type",
    "reference_id", "queue_name", "created_at", "updated_at", "run_at", "attempt", "timeout",
    "cancel_requested", "error_permanent", "has_dependants", "retry_delay", "retry_backoff", "retry_max_delay",
    "retry_jitter", "tags", "metadata", "unique_key", "batch_id", "schedule_name", "deadline",
    "error_message", "error_type", "completed_at", "unset_options", "trace_context",
    "rate_key", "concurrency_key",
    "fair_key",
)  # fmt: skip

_INSERT = "INSERT INTO jobs ({}) VALUES ({})".format(
    ", ".join(INSERT_COLUMNS), ", ".join(":" + c for c in INSERT_COLUMNS)
)
_INSERT_UNIQUE = _INSERT + " ON CONFLICT DO NOTHING RETURNING id"
_FIND_UNIQUE = """SELECT id FROM jobs WHERE unique_key = :unique_key
    AND status IN ('pending', 'waiting', 'retrying', 'running')"""
_INSERT_EDGE = "INSERT INTO job_dependencies (job_id, depends_on_id) VALUES (:job, :dep)"
_MARK_DEPENDED_ON = "UPDATE jobs SET has_dependants = :yes WHERE id = :dep AND NOT has_dependants"

#: Options ``enqueue`` accepts besides args/kwargs (the task's defaults can set the first ones).
OPTION_NAMES = frozenset({
    "queue", "priority", "delay", "scheduled_for", "max_retries", "timeout", "retry_delay",
    "retry_backoff", "retry_max_delay", "retry_jitter", "depends_on", "reference",
    "reference_type", "reference_id", "user_id", "unique_key", "tags", "metadata", "title",
    "description", "deadline", "batch_id", "schedule_name", "rate_key", "concurrency_key", "fair_key",
})  # fmt: skip
#: Options jobtui itself passes: which options the enqueuer left unset (catalog.py), and
#: the enqueuer's trace context (jobtui/tracing.py).
INTERNAL_OPTIONS = frozenset({"unset_options", "trace_context"})
#: A trace context longer than this (a huge baggage header) is not kept.
TRACE_CONTEXT_MAX = 4096

#: Called after jobs were committed with the database and, when every new job is due
#: later, the earliest due time (the supervisors' wake-up poke and its timer).
after_enqueue_hooks: list[Callable[[peewee.Database, str | None], None]] = [poke]


def _number(name: str, value: Any, *, minimum: float | None = 0, allow_none: bool = True) -> Any:
    if value is None and allow_none:
        return None
    kind = type(value)
    if (
        (kind is float or kind is int)
        and math.isfinite(value)
        and (minimum is None or value >= minimum)
    ):  # the common case, without the ABC checks below (every enqueue passes here)
        return float(value)
    if isinstance(value, timedelta):
        value = value.total_seconds()
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise InvalidJob(f"{name} must be a number of seconds, got {value!r}")
    if minimum is not None and value < minimum:
        raise InvalidJob(f"{name} must be >= {minimum:g}, got {value!r}")
    return float(value)


def _integer(name: str, value: Any, *, minimum: int | None = None) -> int:
    if type(value) is int and (minimum is None or value >= minimum):
        return value  # the common case, without the ABC check below
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise InvalidJob(f"{name} must be an integer, got {value!r}")
    if minimum is not None and value < minimum:
        raise InvalidJob(f"{name} must be >= {minimum}, got {value!r}")
    return int(value)


def _moment(name: str, value: Any, now: datetime) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return to_utc_naive(value)
    return now + timedelta(seconds=_number(name, value))


def _text(name: str, value: Any, limit: int) -> str | None:
    if value is None:
        return None
    value = str(value)
    if len(value) > limit:
        raise InvalidJob(f"{name} is longer than {limit} characters")
    return value


_ALLOWED_KEYS = OPTION_NAMES | INTERNAL_OPTIONS | {"args", "kwargs"}


def build_row(job_type: Any, options: Mapping[str, Any], now: datetime) -> dict[str, Any]:
    """The INSERT parameters for one job, or InvalidJob saying what is wrong with it."""
    if not isinstance(job_type, str) or not job_type.strip():
        raise InvalidJob(f"task name must be a non-empty string, got {job_type!r}")
    unknown = options.keys() - _ALLOWED_KEYS
    if unknown:
        raise InvalidJob(f"unknown enqueue option(s): {', '.join(sorted(unknown))}")
    args, kwargs = options.get("args") or [], options.get("kwargs") or {}
    parameters = _parameters(job_type, args, kwargs)
    try:
        tags = None if options.get("tags") is None else dumps(list(options["tags"]))
        metadata = None if options.get("metadata") is None else dumps(options["metadata"])
    except (TypeError, ValueError) as exc:
        raise InvalidJob(f"arguments of {job_type} are not JSON-serialisable: {exc}") from None
    delay = _number("delay", options.get("delay"))
    scheduled_for = _moment("scheduled_for", options.get("scheduled_for"), now)
    if delay:
        scheduled_for = max(scheduled_for or now, now + timedelta(seconds=delay))
    reference = options.get("reference")
    reference_type, reference_id = options.get("reference_type"), options.get("reference_id")
    if reference is not None:
        if not isinstance(reference, tuple | list) or len(reference) != 2:
            raise InvalidJob("reference must be a (reference_type, reference_id) pair")
        reference_type, reference_id = reference
    queue = options.get("queue") or DEFAULT_QUEUE
    if not isinstance(queue, str):
        raise InvalidJob(f"queue must be a string, got {queue!r}")
    timeout = _number("timeout", options.get("timeout"))
    if timeout is not None and timeout <= 0:
        raise InvalidJob(f"timeout must be > 0 seconds, got {timeout:g}")
    jitter = options.get("retry_jitter")
    stamp = sql_timestamp(now)
    deadline = _moment("deadline", options.get("deadline"), now)
    try:
        fair_key = check_fair_key(options.get("fair_key"))
    except ValueError as exc:
        raise InvalidJob(str(exc)) from None
    return {
        "id": new_job_id(), "job_type": job_type, "status": "pending",
        "title": _text("title", options.get("title"), 200),
        "description": options.get("description"), "parameters": parameters,
        "progress_percentage": 0,
        "max_retries": _integer("max_retries", 3 if options.get("max_retries") is None
                                else options["max_retries"], minimum=0),
        "retry_count": 0,
        "priority": _integer("priority", options.get("priority") or 0),
        "scheduled_for": None if scheduled_for is None else sql_timestamp(scheduled_for),
        "user_id": None if options.get("user_id") is None else str(options["user_id"]),
        "reference_type": _text("reference_type", reference_type, 100),
        "reference_id": None if reference_id is None else str(reference_id),
        "queue_name": _text("queue", queue, 100), "created_at": stamp, "updated_at": stamp,
        "run_at": sql_timestamp(scheduled_for) if scheduled_for else stamp,
        "attempt": 0, "timeout": timeout, "cancel_requested": False, "error_permanent": False,
        "has_dependants": False,
        "retry_delay": _number("retry_delay", options.get("retry_delay")),
        "retry_backoff": _number("retry_backoff", options.get("retry_backoff"), minimum=1),
        "retry_max_delay": _number("retry_max_delay", options.get("retry_max_delay")),
        "retry_jitter": None if jitter is None else bool(jitter),
        "tags": tags, "metadata": metadata,
        "unique_key": _text("unique_key", options.get("unique_key"), 200),
        "batch_id": options.get("batch_id"), "schedule_name": options.get("schedule_name"),
        "deadline": None if deadline is None else sql_timestamp(deadline),
        "error_message": None, "error_type": None, "completed_at": None,
        "unset_options": _integer("unset_options", options.get("unset_options") or 0),
        "trace_context": _trace_context(options.get("trace_context")),
        "rate_key": _text("rate_key", options.get("rate_key"), 200),
        "concurrency_key": _text("concurrency_key", options.get("concurrency_key"), 200),
        "fair_key": fair_key,
        "_depends_on": _dependency_ids(options.get("depends_on")),
    }  # fmt: skip


def _parameters(job_type: str, args: Any, kwargs: Any) -> str:
    """The ``parameters`` column: the arguments as JSON, or InvalidJob."""
    if not isinstance(args, (list, tuple)):
        raise InvalidJob(f"args must be a list, got {type(args).__name__}")
    if (type(kwargs) is not dict and not isinstance(kwargs, Mapping)) or (
        kwargs and not all(isinstance(k, str) for k in kwargs)
    ):
        raise InvalidJob("kwargs must be a mapping with string keys")
    try:
        return dumps({"args": list(args), "kwargs": dict(kwargs)})
    except (TypeError, ValueError) as exc:
        raise InvalidJob(f"arguments of {job_type} are not JSON-serialisable: {exc}") from None


# ------------------------------------------------------------------ row templates
#
# Once the catalog's defaults are in, a job's row is a function of its task name, its
# options, its arguments and the moment: the same (task, options) pass the same checks
# and give the same columns. So the first row ``build_row`` makes for a shape is kept,
# keyed by the task name and each option's type and value, and the next enqueues of that
# shape copy it and fill in only their id, parameters and timestamps (the per-call work
# of ``build_row`` was a third of an enqueue's Python). Only plain values make a key (a
# list or a mapping could change under the cache); the options that depend on the moment
# or on other rows always take ``build_row``. Nothing depends on the database, so nothing
# needs invalidating: the catalog's changes arrive in the options (catalog.py's cache
# decides how fresh they are).

#: The row key under which a templated row names its template (Job.from_written reads it;
#: the INSERT, which names its columns, ignores it).
TEMPLATE = "_template"
#: The row key of a templated row's arguments as given, (args, kwargs): Job.from_written
#: uses them for ``parameters`` when decoding the JSON would give back equal values.
ARGUMENTS = "_arguments"
_TEMPLATE_LIMIT = 256
_PLAIN = frozenset({str, int, bool, type(None)})
#: The options a template may hold: a task's settings, the same for many jobs. The others
#: take ``build_row`` when given: the moment's (delay, scheduled_for, deadline), other
#: rows' (depends_on), lists and mappings (tags, metadata), and what is usually each job's
#: own (title, user_id, unique_key ...: a template per job would only churn the cache).
_TEMPLATED = frozenset({"queue", "priority", "max_retries", "timeout", "retry_delay",
                        "retry_backoff", "retry_max_delay", "retry_jitter", "batch_id",
                        "schedule_name", "unset_options"})  # fmt: skip


class RowTemplate:
    """The row every job of one (task, options) shape starts from; ``job_fields`` holds
    the Job's converted fields, filled once by Job.from_written."""

    __slots__ = ("job_fields", "row")

    def __init__(self, row: dict[str, Any]) -> None:
        self.row = row
        self.job_fields: tuple[type, dict[str, Any]] | None = None


_templates: dict[tuple[Any, ...], RowTemplate] = {}


def _template_key(job_type: Any, options: Mapping[str, Any]) -> tuple[Any, ...] | None:
    """The shape of these options, or None when they cannot share a template."""
    if type(job_type) is not str:
        return None
    key: list[Any] = [job_type]
    for name, value in options.items():
        if name == "args" or name == "kwargs":
            continue
        if name not in _TEMPLATED and (value is not None or name not in OPTION_NAMES):
            return None  # (an unknown option: build_row refuses it)
        kind = type(value)
        if kind is float:
            value = value.hex()  # exact: -0.0 and 0.0 are equal, but not the same value
        elif kind not in _PLAIN:
            return None
        key.append((name, kind, value))  # the type too: True == 1, but not as a priority
    return tuple(key)


def row_for(
    job_type: Any, options: Mapping[str, Any], now: datetime | None, stamp: str
) -> dict[str, Any]:
    """``build_row``'s row, from the template of these options' shape when there is one
    (``stamp``: the moment as ``sql_timestamp`` writes it; ``now``: as a datetime, or None
    to be read from ``stamp`` if needed)."""
    key = _template_key(job_type, options)
    if key is None:
        return build_row(job_type, options, now or datetime.fromisoformat(stamp))
    template = _templates.get(key)
    if template is None:
        row = build_row(job_type, options, now or datetime.fromisoformat(stamp))  # once per shape
        if len(_templates) >= _TEMPLATE_LIMIT:
            _templates.clear()
        template = _templates[key] = RowTemplate({**row, "_depends_on": None})
        row[TEMPLATE] = template
        return row
    row = template.row.copy()
    row["id"] = new_job_id()
    args, kwargs = options.get("args") or [], options.get("kwargs") or {}
    row["parameters"] = _parameters(job_type, args, kwargs)
    row[ARGUMENTS] = (args, kwargs)
    row["created_at"] = row["updated_at"] = row["run_at"] = stamp
    row["_depends_on"] = []
    row[TEMPLATE] = template
    return row


def _trace_context(value: Any) -> str | None:
    """The carrier text jobtui/tracing.py passes; anything else (or too long) is dropped:
    a trace is never a reason to refuse a job."""
    if value is None or not isinstance(value, str) or len(value) > TRACE_CONTEXT_MAX:
        return None
    return value


def _dependency_ids(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str) or not isinstance(value, Iterable):
        value = [value]
    ids = []
    for item in value:
        job_id = getattr(item, "id", item)
        if not isinstance(job_id, str) or not job_id:
            raise InvalidJob(f"depends_on takes job ids, got {item!r}")
        ids.append(job_id)
    return list(dict.fromkeys(ids))


def _resolve_dependencies(db: peewee.Database, row: dict[str, Any], deps: list[str]) -> None:
    """Check the dependencies exist; make the row ``waiting`` (or cancelled) as they stand."""
    dialect = dialect_for(db)
    marks = ", ".join(f":d{i}" for i in range(len(deps)))
    # PostgreSQL: lock the dependencies until we commit, so one that ends meanwhile ends
    # after our edge is visible (and follows it up), or before our read (SQLite: the
    # write transaction's lock).
    lock = " ORDER BY id FOR UPDATE" if dialect.name == "postgresql" else ""
    found = dict(db.execute_sql(
        dialect.sql(f"SELECT id, status FROM jobs WHERE id IN ({marks}){lock}"),
        {f"d{i}": dep for i, dep in enumerate(deps)},
    ).fetchall())  # fmt: skip
    missing = [dep for dep in deps if dep not in found]
    if missing:
        raise InvalidJob(f"depends_on names unknown job(s): {', '.join(missing)}")
    dead = [dep for dep in deps if found[dep] in ("failed", "cancelled")]
    if dead:
        row.update(status="cancelled", completed_at=row["created_at"], error_type="DependencyFailed",
                   error_message=f"dependency {dead[0]} {found[dead[0]]}")  # fmt: skip
    elif any(found[dep] != "completed" for dep in deps):
        row["status"] = "waiting"


def _write(db: peewee.Database, row: dict[str, Any]) -> tuple[str, bool]:
    dialect = dialect_for(db)
    deps = row.pop("_depends_on")
    if deps:
        _resolve_dependencies(db, row, deps)
    if row["unique_key"] is None:
        db.execute_sql(dialect.sql(_INSERT), row)
    else:
        for _ in range(5):  # the holder may end between our insert and our look-up
            if db.execute_sql(dialect.sql(_INSERT_UNIQUE), row).fetchone() is not None:
                break
            existing = db.execute_sql(dialect.sql(_FIND_UNIQUE), row).fetchone()
            if existing is not None:
                return existing[0], False
        else:
            raise InvalidJob(f"could not enqueue unique key {row['unique_key']!r}: contended")
    for dep in deps:
        db.execute_sql(dialect.sql(_INSERT_EDGE), {"job": row["id"], "dep": dep})
        db.execute_sql(dialect.sql(_MARK_DEPENDED_ON), {"dep": dep, "yes": True})
    if row["status"] == "cancelled":  # a dependency had already failed: it ended here
        from .base import as_datetime
        from .rollup import tally_ended

        tally_ended(db, [(row["queue_name"], row["job_type"])], as_datetime(row["created_at"]))
    return row["id"], True


_JOIN_BATCH = """UPDATE batches SET total = total + :count
WHERE id = :id AND finished_at IS NULL"""


def _join_batches(db: peewee.Database, rows: Sequence[Mapping[str, Any]]) -> None:
    """Jobs naming a batch join it: it must exist and not have finished (its callbacks
    would never see them), and its total counts them. The update locks the batch row, so
    a batch whose last job ends meanwhile either sees these jobs or has finished first."""
    dialect = dialect_for(db)
    counts: dict[str, int] = {}
    for row in rows:
        if row.get("batch_id"):
            counts[row["batch_id"]] = counts.get(row["batch_id"], 0) + 1
    for batch_id, count in sorted(counts.items()):
        joined = db.execute_sql(dialect.sql(_JOIN_BATCH), {"id": batch_id, "count": count})
        if joined.rowcount == 0:
            raise InvalidJob(f"batch {batch_id} is finished or unknown: jobs join open batches")


def insert_jobs(
    job_type: str | Sequence[str],
    items: Sequence[Mapping[str, Any]],
    *,
    database: peewee.Database | str | None = None,
    with_rows: bool = False,
) -> list[tuple[str, bool]] | list[tuple[str, bool, dict[str, Any] | None]]:
    """Write jobs in one transaction; returns ``(id, created)`` per item (created is False
    when a live job with the same ``unique_key`` was returned instead).

    ``job_type`` is one task name for all items, or one per item. ``with_rows`` adds the
    row as written (None for a job that already existed), so the caller can build the
    Job without reading it back.
    """
    db = get_database(database)
    single = isinstance(job_type, str) or not isinstance(job_type, list | tuple)
    if len(items) == 1 and (single or len(job_type) == 1):  # an enqueue
        name = job_type if single else job_type[0]
        stamp = utc_stamp()
        # the task catalog's defaults, for what is unset
        row = row_for(name, with_task_default(name, items[0], db), None, stamp)
        if (not row["_depends_on"] and not row["batch_id"] and row["unique_key"] is None
                and row["fair_key"] is None and not db.in_transaction()):  # fmt: skip
            return [_insert_alone(db, row, stamp, with_rows)]
        rows = [row]
    else:
        now = utcnow()
        stamp = sql_timestamp(now)
        names = [job_type] * len(items) if single else list(job_type)  # a bad name: build_row
        items = with_task_defaults(names, items, db)  # the catalog's, for what is unset
        rows = [row_for(name, item, now, stamp) for name, item in zip(names, items, strict=True)]
    if not rows:
        return []
    dialect = dialect_for(db)
    due = min(r["run_at"] for r in rows)
    due = due if due > stamp else None
    wake = due or "!"  # the supervisors' wake-up: now, or a timer for the due time
    written: list[dict[str, Any]] = []

    def run() -> list[tuple[str, bool]]:
        written[:] = [dict(r) for r in rows]  # a retry starts again from the validated rows
        batched = any(r.get("batch_id") for r in written)
        keyed = any(r["fair_key"] is not None for r in written)
        # Inside a caller's transaction the savepoint below keeps a refused INSERT from
        # aborting it (PostgreSQL aborts a transaction at its first failed statement).
        with dialect.write_transaction(db):
            if batched:
                _join_batches(db, written)
            if keyed:  # the claim finds a key through its row (fairness.py)
                add_fair_keys(db, written)
            if all(not r["_depends_on"] and r["unique_key"] is None for r in written):
                for r in written:
                    del r["_depends_on"]
                dialect.insert_rows(db, INSERT_COLUMNS, written, wake)
                return [(r["id"], True) for r in written]
            results = [_write(db, r) for r in written]
            dialect.notify(db, wake)
            return results

    try:
        # Inside the caller's transaction a retry cannot help: its lock is the caller's.
        results = run() if db.in_transaction() else with_lock_retry(run)
    except peewee.IntegrityError as exc:
        raise InvalidJob(f"job refused by the database: {exc}") from exc
    if not db.in_transaction():
        for hook in after_enqueue_hooks:
            hook(db, due)
    else:
        db.after_commit(lambda: [hook(db, due) for hook in after_enqueue_hooks])
    if with_rows:
        return [(job_id, created, row if created else None)
                for (job_id, created), row in zip(results, written, strict=True)]  # fmt: skip
    return results


def _insert_alone(
    db: peewee.Database, row: dict[str, Any], stamp: str, with_rows: bool
) -> tuple[str, bool] | tuple[str, bool, dict[str, Any]]:
    """Write one job that joins nothing (no batch, dependencies or unique key), outside
    any transaction: one statement (with its NOTIFY on PostgreSQL), atomic in autocommit.
    The path of a plain ``enqueue``: nothing here that the job does not need.

    On SQLite the job is staged (staging.py: three b-trees written, not five) unless a
    rate or key limit may apply to it (flow.py reads those through their own index)."""
    del row["_depends_on"]
    due = row["run_at"]
    due = due if due > stamp else None
    dialect = dialect_for(db)
    written = row
    if stages(db) and row["rate_key"] is None and row["concurrency_key"] is None:
        written = {**row, "unset_options": row["unset_options"] | STAGED_BIT}  # the Job's stays
    try:
        with_lock_retry(lambda: dialect.insert_rows(db, INSERT_COLUMNS, (written,), due or "!"))
    except peewee.IntegrityError as exc:
        raise InvalidJob(f"job refused by the database: {exc}") from exc
    for hook in after_enqueue_hooks:
        hook(db, due)
    return (row["id"], True, row) if with_rows else (row["id"], True)


def insert_job(
    job_type: str, *, database: peewee.Database | str | None = None, **options: Any
) -> str:
    """Write one job; returns its id (the existing live job's id for a taken ``unique_key``)."""
    return insert_jobs(job_type, [options], database=database)[0][0]
