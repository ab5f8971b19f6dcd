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
import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import peewee

from .db import is_sqlite

#: Columns a claim returns, in order (the dispatch loop needs no second read).
CLAIM_COLUMNS = (
    "id", "job_type", "parameters", "attempt", "lease_token", "retry_count", "max_retries",
    "timeout", "queue_name", "priority", "retry_delay", "retry_backoff", "retry_max_delay",
    "retry_jitter", "started_at", "run_at",
)  # fmt: skip

_SET_RUNNING = """status = 'running', attempt = {jobs}attempt + 1, lease_token = {token},
    started_at = {p}now, heartbeat_at = {db_now}, updated_at = {p}now,
    worker_name = {p}worker_name, supervisor_name = {p}supervisor_name,
    progress_percentage = 0, progress_message = NULL"""

_CLAIM_SQLITE = """UPDATE jobs SET {set_running}
WHERE id IN (
    SELECT id FROM jobs
    WHERE status IN ('pending', 'retrying') AND run_at <= :now
      AND (deadline IS NULL OR deadline > :now)
      AND (:queues IS NULL OR queue_name IN (SELECT value FROM json_each(:queues)))
      AND (:tasks IS NULL OR job_type IN (SELECT value FROM json_each(:tasks)))
      AND queue_name NOT IN (SELECT name FROM queues WHERE paused)
    ORDER BY priority DESC, run_at, id
    LIMIT :limit)
RETURNING {returning}"""

_CLAIM_POSTGRES = """WITH claimable AS MATERIALIZED (
    SELECT id FROM jobs
    WHERE status IN ('pending', 'retrying') AND run_at <= %(now)s
      AND (deadline IS NULL OR deadline > %(now)s)
      AND (%(queues)s::text[] IS NULL OR queue_name = ANY(%(queues)s::text[]))
      AND (%(tasks)s::text[] IS NULL OR job_type = ANY(%(tasks)s::text[]))
      AND queue_name NOT IN (SELECT name FROM queues WHERE paused)
    ORDER BY priority DESC, run_at, id
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED)
UPDATE jobs SET {set_running}
FROM claimable WHERE jobs.id = claimable.id
RETURNING {returning}"""


#: The database's own clock on PostgreSQL, as a naive UTC timestamp: leases are judged on it.
POSTGRES_NOW = "(now() AT TIME ZONE 'UTC')"


@dataclass(frozen=True)
class Dialect:
    """What differs between the engines, chosen once per Database object."""

    name: str
    claim_sql: str

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
        """A list parameter for ``claim_sql``: JSON text for SQLite, an array for PostgreSQL."""
        if values is None:
            return None
        return json.dumps(list(values)) if self.name == "sqlite" else list(values)

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

    def set_lock_wait(self, db: peewee.Database, milliseconds: int) -> None:
        """How long a statement waits for SQLite's write lock before "database is locked".

        The supervisor's loop waits briefly and retries on its next turn, so a long lock
        held by someone else never stalls its timeouts and signals.
        """
        if self.name == "sqlite":
            db.pragma("busy_timeout", int(milliseconds), permanent=True)

    def lock_schema(self, db: peewee.Database) -> None:
        """Serialise schema creation between processes (SQLite's write lock already does)."""
        if self.name == "postgresql":
            db.execute_sql("SELECT pg_advisory_xact_lock(7315310)")


def _build(name: str) -> Dialect:
    returning = ", ".join(("jobs." if name == "postgresql" else "") + c for c in CLAIM_COLUMNS)
    if name == "sqlite":
        set_running = _SET_RUNNING.format(
            jobs="", token="lower(hex(randomblob(16)))", p=":", db_now=":now"
        )
        claim = _CLAIM_SQLITE.format(set_running=set_running, returning=returning)
    else:
        set_running = _SET_RUNNING.format(
            jobs="jobs.",
            token="md5(random()::text || clock_timestamp()::text)",
            p=":",
            db_now=POSTGRES_NOW,
        )
        claim = _CLAIM_POSTGRES.format(set_running=set_running, returning=returning)
    dialect = Dialect(name=name, claim_sql="")
    return Dialect(name=name, claim_sql=dialect.sql(claim))


SQLITE = _build("sqlite")
POSTGRESQL = _build("postgresql")


def dialect_for(db: peewee.Database) -> Dialect:
    """The dialect of ``db`` (a Database or a bound DatabaseProxy)."""
    return SQLITE if is_sqlite(db) else POSTGRESQL
