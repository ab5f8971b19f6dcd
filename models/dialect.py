"""The one place where SQLite and PostgreSQL differ: the claim statement and transactions.

Everything else (each state transition, each query) is written once. Statements here are
plain SQL with named parameters, built once per dialect: compiling a Peewee query costs
~0.5 ms, and doing that while holding SQLite's write lock starves other writers
(RELIABILITY.md, fact 7). On PostgreSQL the claim is a MATERIALIZED CTE with
``FOR UPDATE SKIP LOCKED``: ``UPDATE … WHERE id IN (SELECT … LIMIT n)`` can update more
than n rows under a nested-loop plan (fact 2, PostgreSQL bug #15715).
"""

from __future__ import annotations

import contextlib
import functools
import json
import operator
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass

import peewee

from . import wakeup
from .db import is_sqlite
from .staging import NOT_STAGED

TYPE_CHECKING = False  # typing stays unimported at run time (module memory)
if TYPE_CHECKING:
    from typing import Any


#: Columns a claim returns, in order (the dispatch loop needs no second read).
CLAIM_COLUMNS = (
    "id", "job_type", "parameters", "attempt", "lease_token", "retry_count", "max_retries",
    "timeout", "queue_name", "priority", "retry_delay", "retry_backoff", "retry_max_delay",
    "retry_jitter", "started_at", "run_at", "unset_options", "trace_context",
    "next_retry_at",
)  # fmt: skip

_SET_RUNNING = """status = 'running', attempt = {jobs}attempt + 1, lease_token = {token},
    started_at = {p}now, heartbeat_at = {db_now}, updated_at = {p}now,
    worker_name = {p}worker_name, supervisor_name = {p}supervisor_name,
    progress_percentage = 0, progress_message = NULL, progress_details = NULL"""

#: Index names the SQLite claim names in INDEXED BY (created by models/job.py).
CLAIM_ORDER_INDEX = "jobs_claim_order"
CLAIM_QUEUE_INDEX = "jobs_claim_queue"

# A job is due once its place in line (``run_at``) has come and, for a retry, its backoff
# (``next_retry_at``) is over. Requeues keep ``run_at``: a job going back in line keeps its
# place (outcomes.py).
# Staged jobs are left out (staging.py: the claim promotes them first).
_CLAIM_FILTER = (
    """status IN ('pending', 'retrying') AND run_at <= :now
      AND (next_retry_at IS NULL OR next_retry_at <= :now)
      AND (deadline IS NULL OR deadline > :now) AND fair_key IS NULL
      AND """
    + NOT_STAGED
    + """
      AND {tasks}
      AND queue_name NOT IN (SELECT name FROM queues
                             WHERE paused OR (concurrency IS NOT NULL AND NOT :capped))"""
)

_ORDER = "ORDER BY priority DESC, run_at, id"

# While rates or key limits exist (flow.py), the claim takes only the jobs none applies to
# (the others are claimed apart, within their allowances): its filter gains this clause.
_UNBOUND = {
    "sqlite": """ AND rate_key IS NULL AND concurrency_key IS NULL
      AND queue_name NOT IN (SELECT value FROM json_each(:rated_queues))
      AND job_type NOT IN (SELECT value FROM json_each(:rated_tasks))""",
    "postgresql": """ AND rate_key IS NULL AND concurrency_key IS NULL
      AND NOT (queue_name = ANY(:rated_queues::text[]))
      AND NOT ((job_type || '') = ANY(:rated_tasks::text[]))""",
}

# SQLite: walk the claim index in claim order and stop after LIMIT rows (INDEXED BY, since
# the planner otherwise prefers a status index and sorts every pending row). One arm per
# queue, each walking (queue_name, priority, run_at, id), merged in claim order.
_CLAIM_SQLITE = """UPDATE jobs SET {set_running}
WHERE id IN ({select})
RETURNING {returning}"""
_SQLITE_ALL = "SELECT id FROM jobs INDEXED BY {index} WHERE {filter} {order} LIMIT :limit"
_SQLITE_ARM = ("SELECT * FROM (SELECT id, priority, run_at FROM jobs INDEXED BY {index} "
               "WHERE queue_name = :q{n} AND {filter} {order} LIMIT :limit)")  # fmt: skip

_CLAIM_POSTGRES = """WITH claimable AS MATERIALIZED (
    SELECT id FROM jobs
    WHERE {filter}
      AND (:queues::text[] IS NULL OR queue_name = ANY(:queues::text[]))
    {order}
    LIMIT :limit
    FOR UPDATE SKIP LOCKED)
UPDATE jobs SET {set_running}
FROM claimable WHERE jobs.id = claimable.id
RETURNING {returning}"""


#: PostgreSQL: the most rows one INSERT carries (the driver interpolates the values, so
#: this bounds a statement's size: about 1 MB of SQL for 1,000 jobs).
INSERT_CHUNK = 1000

#: The database's own clock on PostgreSQL, as a naive UTC timestamp: leases are judged on it.
POSTGRES_NOW = "(now() AT TIME ZONE 'UTC')"


@dataclass(frozen=True)
class Dialect:
    """What differs between the engines, chosen once per Database object."""

    name: str
    set_running: str
    returning: str

    @property
    def writable_ctes(self) -> bool:
        """Whether one statement may change two tables (PostgreSQL's data-modifying WITH):
        a completion then writes its attempt row in the same round trip."""
        return self.name == "postgresql"

    def with_db_now(self, statement: str) -> str:
        """Fill ``{now}`` with the clock leases are stamped with: the database's on
        PostgreSQL (hosts' clocks differ), the ``:now`` parameter on SQLite (one host)."""
        return self.sql(statement.format(now=":now" if self.name == "sqlite" else POSTGRES_NOW))

    def sql(self, statement: str) -> str:
        """Turn a statement written with ``:name`` parameters into this driver's style."""
        if self.name == "sqlite":
            return statement
        return re.sub(r"(?<![:\w]):([a-z_][a-z0-9_]*)", r"%(\1)s", statement)

    def list_param(self, values: Sequence[str] | None) -> Any:
        """A list parameter: JSON text for SQLite (json_each), an array for PostgreSQL."""
        if values is None:
            return None
        return _json_list(tuple(values)) if self.name == "sqlite" else list(values)

    @property
    def claim_sql(self) -> str:
        """The claim over every queue."""
        return self.claim_statement(None)

    def claim_statement(self, queue_count: int | None, unbound: bool = False) -> str:
        """The claim for ``queue_count`` queues (None: every queue); cached per shape.
        ``unbound``: only jobs no rate or key limit applies to (flow.py)."""
        key = (self.name, queue_count, unbound)
        found = _CLAIM_CACHE.get(key)
        if found is None:
            found = _CLAIM_CACHE[key] = self._build_claim(queue_count, unbound)
        return found

    def claim_queue_params(self, queues: Sequence[str] | None) -> dict[str, Any]:
        """The queue parameters of ``claim_statement(len(queues))``."""
        if self.name == "sqlite":
            return {f"q{n}": queue for n, queue in enumerate(queues or ())}
        return {"queues": None if queues is None else list(queues)}

    def _build_claim(self, queue_count: int | None, unbound: bool = False) -> str:
        flow = _UNBOUND[self.name] if unbound else ""
        if self.name == "sqlite":
            tasks = "(:tasks IS NULL OR job_type IN (SELECT value FROM json_each(:tasks)))"
            where = _CLAIM_FILTER.format(tasks=tasks) + flow
            if queue_count is None:
                select = _SQLITE_ALL.format(index=CLAIM_ORDER_INDEX, filter=where, order=_ORDER)
            else:
                arms = [_SQLITE_ARM.format(index=CLAIM_QUEUE_INDEX, n=n, filter=where, order=_ORDER)
                        for n in range(max(1, queue_count))]  # fmt: skip
                select = f"SELECT id FROM ({' UNION ALL '.join(arms)}) {_ORDER} LIMIT :limit"
            sql = _CLAIM_SQLITE.format(set_running=self.set_running, select=select,
                                       returning=self.returning)  # fmt: skip
        else:
            # ``job_type || ''``: the task list matches nearly every row, so the (job_type,
            # id) index never helps a claim; hidden from the planner, it cannot be picked
            # on stale statistics (a fresh bulk insert) to sort every pending row per claim.
            tasks = "(:tasks::text[] IS NULL OR (job_type || '') = ANY(:tasks::text[]))"
            where = _CLAIM_FILTER.format(tasks=tasks) + flow
            sql = _CLAIM_POSTGRES.format(filter=where, order=_ORDER, set_running=self.set_running,
                                         returning=self.returning)  # fmt: skip
            # Walk a claim index in its order, never sort every pending row: a planner
            # that trusts stale statistics (a fresh bulk insert: "1 row") picks a sort.
            # SET LOCAL ends with the transaction; claims are a turn's last statements.
            sql = "SET LOCAL enable_sort = off;\n" + sql
        return self.sql(sql)

    @contextlib.contextmanager
    def write_transaction(self, db: peewee.Database) -> Iterator[None]:
        """A transaction that may read then write.

        SQLite: ``BEGIN IMMEDIATE`` takes the write lock up front, so busy_timeout applies;
        a deferred transaction that upgrades fails at once with "database is locked"
        (fact 1). Inside an open transaction this is a savepoint of the caller's.
        """
        if self.name == "sqlite" and not db.in_transaction():
            with db.atomic("IMMEDIATE"):
                yield
        else:
            with db.atomic():
                yield

    def insert_rows(
        self,
        db: peewee.Database,
        columns: Sequence[str],
        rows: Sequence[Mapping[str, Any]],
        wake: str,
    ) -> None:
        """Insert job ``rows`` in the fewest round trips the engine allows.

        SQLite: one prepared INSERT run per row (in-process, compiled once); supervisors
        are woken after the commit (``wakeup.poke``, a datagram). PostgreSQL: one
        multi-row INSERT per ``INSERT_CHUNK`` rows that also sends the NOTIFY waking the
        supervisors (``WITH ins AS (INSERT …) SELECT pg_notify(…)``): one round trip for
        an enqueue, one per 1,000 jobs for ``enqueue_many``, where the INSERT and a
        separate notify took two, and ``executemany`` one per row. NOTIFY is
        transactional: it is delivered when the rows commit (an application's
        transaction too), with ``wake`` (a due time, or "!") as its payload.
        """
        if self.name == "sqlite":
            if len(rows) == 1:  # an enqueue: only the columns it fills (see _sqlite_single)
                row = rows[0]
                present = tuple([c for c in columns if row[c] is not None])
                db.execute_sql(_sqlite_single(present), [row[c] for c in present])
            else:
                db.cursor().executemany(_sqlite_insert(tuple(columns)), rows)
            return
        if len(rows) == 1:  # an enqueue: the values in one C call, the statement cached
            single = _SINGLE.get(id(columns))
            if single is None or single[0] is not columns:  # (the same tuple, not a reused id)
                single = _SINGLE[id(columns)] = (columns, *_postgres_single(tuple(columns)))
            db.execute_sql(single[1], single[2](rows[0]) + (wakeup.CHANNEL, wake))
            return
        columns = tuple(columns)
        for start in range(0, len(rows), INSERT_CHUNK):
            chunk = rows[start : start + INSERT_CHUNK]
            params = [row[c] for row in chunk for c in columns]
            params += (wakeup.CHANNEL, wake)
            db.execute_sql(_postgres_insert(columns, len(chunk)), params)

    def notify(self, db: peewee.Database, wake: str) -> None:
        """Wake the supervisors when the current transaction commits (PostgreSQL's NOTIFY;
        SQLite's wake-up is a datagram sent after the commit, ``wakeup.poke``)."""
        if self.name == "postgresql":
            db.execute_sql("SELECT pg_notify(%s, %s)", (wakeup.CHANNEL, wake))

    def set_lock_wait(self, db: peewee.Database, milliseconds: int) -> None:
        """How long a statement waits for a lock held elsewhere before it fails: SQLite's
        write lock ("database is locked"), a PostgreSQL row lock (``lock_timeout``; an
        application may hold one on a job row in its own long transaction).

        The supervisor's loop waits briefly and retries on its next turn, so a long lock
        held by someone else never stalls its timeouts and signals.
        """
        if self.name == "sqlite":
            db.pragma("busy_timeout", int(milliseconds), permanent=True)
            return
        db.connect_params["options"] = f"-c lock_timeout={int(milliseconds)}"  # reconnects
        if not db.is_closed():
            db.execute_sql(f"SET lock_timeout = {int(milliseconds)}")

    def set_page_cache(self, db: peewee.Database, kilobytes: int) -> None:
        """The most SQLite keeps cached for this connection (PostgreSQL: the server's)."""
        if self.name == "sqlite":
            db.pragma("cache_size", -int(kilobytes), permanent=True)

    def unlocked_jobs(self, db: peewee.Database, ids: Sequence[str]) -> set[str]:
        """Of these jobs, the ones no other transaction holds a lock on, locked now for
        ours (PostgreSQL). A reaper or a lease renewal skips the rest until its next turn:
        another transaction is writing them (an application's, or a supervisor stopped
        mid-commit), and waiting on it would fail our whole transaction. SQLite: all of
        them (our write lock is the only lock)."""
        if self.name == "sqlite" or not ids:
            return set(ids)
        rows = db.execute_sql(
            "SELECT id FROM jobs WHERE id = ANY(%(ids)s) ORDER BY id FOR UPDATE SKIP LOCKED",
            {"ids": sorted(set(ids))},
        ).fetchall()
        return {row[0] for row in rows}

    def lock_schema(self, db: peewee.Database) -> None:
        """Serialise schema creation between processes (SQLite's write lock already does)."""
        if self.name == "postgresql":
            db.execute_sql("SELECT pg_advisory_xact_lock(7315310)")

    def block_writes(self, db: peewee.Database, table: str) -> None:
        """Hold off other transactions' writes to ``table`` until this one ends (SQLite's
        write transaction already does), so what was read there stays true."""
        if self.name == "postgresql":
            db.execute_sql(f"LOCK TABLE {table} IN SHARE MODE")


_CLAIM_CACHE: dict[tuple[str, int | None, bool], str] = {}
#: id(columns) -> (columns, one-row INSERT, its values getter): what an enqueue's
#: ``insert_rows`` needs without hashing its 37 column names each call (the entry keeps
#: the columns alive, so their id is not reused while it lives).
_SINGLE: dict[int, tuple[Any, str, Any]] = {}


@functools.lru_cache(maxsize=64)
def _sqlite_single(columns: tuple[str, ...]) -> str:
    """The one-row INSERT naming only the columns a job fills, with positional values.

    A job leaves most of its ~40 insert columns NULL; binding each of them by name cost a
    fifth of a single enqueue on SQLite (bench/store.py, issue 17). A column left out is
    NULL, as binding None makes it: no insert column has a DEFAULT (a contract test
    holds that). One statement per set of filled columns: a few per application."""
    return "INSERT INTO jobs ({}) VALUES ({})".format(
        ", ".join(columns), ", ".join("?" * len(columns))
    )


@functools.lru_cache(maxsize=8)
def _sqlite_insert(columns: tuple[str, ...]) -> str:
    return "INSERT INTO jobs ({}) VALUES ({})".format(
        ", ".join(columns), ", ".join(":" + c for c in columns)
    )


@functools.lru_cache(maxsize=8)
def _postgres_single(
    columns: tuple[str, ...],
) -> tuple[str, Callable[[Mapping[str, Any]], tuple[Any, ...]]]:
    """The one-row INSERT with its NOTIFY, and what takes a row's values in ``columns``'
    order as a tuple (operator.itemgetter: one C call)."""
    if len(columns) == 1:  # itemgetter of one key gives the value, not a tuple
        return _postgres_insert(columns, 1), lambda row: (row[columns[0]],)
    return _postgres_insert(columns, 1), operator.itemgetter(*columns)  # type: ignore[return-value]


@functools.lru_cache(maxsize=64)
def _postgres_insert(columns: tuple[str, ...], rows: int) -> str:
    """The INSERT of ``rows`` rows with its NOTIFY, positional parameters (cached by size:
    a full chunk and a single row are the common ones)."""
    one = "(" + ", ".join(["%s"] * len(columns)) + ")"
    values = ", ".join([one] * rows)
    return (f"WITH ins AS (INSERT INTO jobs ({', '.join(columns)}) VALUES {values}) "
            "SELECT pg_notify(%s, %s)")  # fmt: skip


@functools.lru_cache(maxsize=64)
def _json_list(values: tuple[str, ...]) -> str:
    """JSON text of a list; cached, as a supervisor passes the same task names each claim."""
    return json.dumps(list(values))


def pg_array(values: Sequence[Any]) -> str:
    """A PostgreSQL array literal (``{"a","b",NULL}``) of ``values``, for one parameter
    cast to an array type (``%s::text[]``): the driver sends one string the server
    lexes as one token, where a list is adapted to ``ARRAY[...]`` with an expression per
    element. Every element is quoted (``"3"`` is read as the element type's input, an
    int for ``int[]``), backslashes and double quotes escaped; None is NULL."""
    parts = []
    for value in values:
        if value is None:
            parts.append("NULL")
        else:
            text = value if type(value) is str else str(value)
            if "\\" in text or '"' in text:
                text = text.replace("\\", "\\\\").replace('"', '\\"')
            parts.append(f'"{text}"')
    return "{" + ",".join(parts) + "}"


def _build(name: str) -> Dialect:
    returning = ", ".join(("jobs." if name == "postgresql" else "") + c for c in CLAIM_COLUMNS)
    if name == "sqlite":
        set_running = _SET_RUNNING.format(
            jobs="", token="lower(hex(randomblob(16)))", p=":", db_now=":now"
        )
    else:
        set_running = _SET_RUNNING.format(
            jobs="jobs.",
            token="md5(random()::text || clock_timestamp()::text)",
            p=":",
            db_now=POSTGRES_NOW,
        )
    return Dialect(name=name, set_running=set_running, returning=returning)


SQLITE = _build("sqlite")
POSTGRESQL = _build("postgresql")


def dialect_for(db: peewee.Database) -> Dialect:
    """The dialect of ``db`` (a Database or a bound DatabaseProxy)."""
    return SQLITE if is_sqlite(db) else POSTGRESQL
