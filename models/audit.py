"""The audit log: one row for every operator action, whoever took it and from where.

Seed 004's activity logging, for the hands on the controls rather than for the jobs: a
cancel, kill, retry, edit, delete, priority change, pause or resume, limit, purge, or a
schedule's add, remove, pause or run-now — from the CLI, the console or the Python API —
leaves a row saying when, who (the OS user and host, or the API caller's ``actor=``),
where (``cli``, ``console``, ``api``), what (the action, its target and its arguments) and
how many jobs it changed.

Wiring an action is one call. Either wrap it, so the row is written in the action's own
transaction (an action that raises, or that changed no job, writes none)::

    audit.audited("cancel", ids, lambda: actions.cancel_jobs(ids, db=db), db=db,
                  arguments={"reason": reason})

or, for an action that cannot run in one transaction (``purge`` deletes in batches),
record it once it is done::

    audit.record("purge", "failed jobs", deleted, arguments={"queue": queue})

Who and where come from the caller (``actor=``, ``where=``), else from the innermost
``with audit.scope(where="cli")`` (the CLI's entry point, the console's operations),
else ``api`` and the OS user. Job text in targets and arguments is stored as given and
shown through ``visible`` wherever it reaches a terminal.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime, timedelta

import peewee

from .base import BaseModel, JSONText, UTCDateTime
from .clock import iso_utc, sql_timestamp, utcnow
from .dialect import dialect_for

TYPE_CHECKING = False  # typing stays unimported at run time (module memory)
if TYPE_CHECKING:
    from typing import Any, TypeVar

    T = TypeVar("T")

#: The places an action can come from.
WHERE = ("cli", "console", "api")
#: Job ids kept in one row's arguments; a bigger action keeps the count and the first ones.
IDS_KEPT = 100
#: The supervisor's default retention of audit rows (``--audit-retention-days``).
DEFAULT_AUDIT_RETENTION_DAYS = 90.0
PRUNE_BATCH = 500  # as the jobs retention: short transactions


class AuditEntry(BaseModel):
    """One operator action. ``count`` is how many jobs it changed (None: it acts on a
    queue or a schedule, not on jobs)."""

    id = peewee.BigAutoField()
    at = UTCDateTime(index=True)  # --since and the retention read by time
    actor = peewee.CharField(max_length=200)
    host = peewee.CharField(max_length=255, null=True)
    where = peewee.CharField(max_length=16, column_name="origin")  # WHERE is SQL's own word
    action = peewee.CharField(max_length=40)
    target = peewee.TextField()
    arguments = JSONText(null=True)
    count = peewee.IntegerField(null=True)

    class Meta:
        table_name = "audit_log"

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "at": iso_utc(self.at), "actor": self.actor, "host": self.host,
                "where": self.where, "action": self.action, "target": self.target,
                "arguments": self.arguments, "count": self.count}  # fmt: skip


_scope: ContextVar[tuple[str | None, str | None]] = ContextVar("jobtui_audit", default=(None, None))


@contextmanager
def scope(*, where: str | None = None, actor: str | None = None) -> Iterator[None]:
    """Actions taken inside the block are recorded as coming from ``where`` (and by
    ``actor``) unless the call names its own. The CLI and the console set it once."""
    outer_where, outer_actor = _scope.get()
    token = _scope.set((where or outer_where, actor or outer_actor))
    try:
        yield
    finally:
        _scope.reset(token)


_me: tuple[str, str] | None = None


def get_database(db: peewee.Database | None) -> peewee.Database:
    """store.get_database, imported late: the store imports this module's table."""
    from .store import get_database as configured

    return configured(db)


def os_identity() -> tuple[str, str]:
    """(user, host) of this process: who an action is by when no ``actor=`` says."""
    global _me
    if _me is None:
        import getpass  # the first action only: supervisors never need it

        try:
            user = getpass.getuser()
        except (KeyError, OSError):  # no passwd entry (a container's bare uid)
            user = f"uid {os.getuid()}"
        _me = (user, socket.gethostname())
    return _me


def _text(value: object) -> str:
    """Text for a column: PostgreSQL's text cannot hold NUL, and a hostile actor name must
    not fail the action it records (arguments are JSON, where NUL is escaped)."""
    return str(value).replace("\x00", "\ufffd")


def _plain(value: Any) -> Any:
    """``value`` as JSON can hold it (a datetime as its text), so recording never fails
    on an argument the action itself took."""
    import json

    try:
        return json.loads(json.dumps(value, default=str, allow_nan=False))
    except (TypeError, ValueError):
        return repr(value)


def _target(target: str | Sequence[str], arguments: dict[str, Any]) -> str:
    """A job id, a queue or a schedule name as it is; several job ids as "N jobs", the
    first ``IDS_KEPT`` of them in the arguments."""
    if isinstance(target, str):
        return target
    ids = list(target)
    if len(ids) == 1:
        return str(ids[0])
    arguments["ids"] = [str(i) for i in ids[:IDS_KEPT]]
    if len(ids) > IDS_KEPT:
        arguments["ids_not_listed"] = len(ids) - IDS_KEPT
    return f"{len(ids):,} jobs"


def record(
    action: str,
    target: str | Sequence[str],
    count: int | None = None,
    *,
    arguments: Mapping[str, Any] | None = None,
    actor: str | None = None,
    where: str | None = None,
    db: peewee.Database | None = None,
) -> None:
    """Write one audit row now, in the transaction open on ``db`` if there is one (so it
    commits or rolls back with the action). ``target``: a job id, queue or schedule
    name, or a sequence of job ids."""
    db = get_database(db)
    scoped_where, scoped_actor = _scope.get()
    where = where or scoped_where or "api"
    if where not in WHERE:
        raise ValueError(f"where is one of {', '.join(WHERE)}, not {where!r}")
    user, host = os_identity()
    args = {str(k): _plain(v) for k, v in (arguments or {}).items() if v is not None}
    text = _target(target, args)
    AuditEntry.insert(at=utcnow(), actor=_text(actor or scoped_actor or user)[:200], host=host,
                      where=where, action=_text(action)[:40], target=_text(text),
                      arguments=args or None, count=count).execute(db)  # fmt: skip


def audited(
    action: str,
    target: str | Sequence[str],
    work: Callable[[], T],
    *,
    count: int | Callable[[T], int | None] | None = None,
    arguments: Mapping[str, Any] | Callable[[T], Mapping[str, Any]] | None = None,
    actor: str | None = None,
    where: str | None = None,
    db: peewee.Database | None = None,
) -> T:
    """Run ``work`` (the action) and write its audit row in one write transaction; the
    action's own transaction becomes a savepoint of it. Returns what ``work`` returns.

    No row when ``work`` raises (an unknown id, a refused transition) or changed no job:
    for a result with ``changed``/``requested`` (``actions.ActionResult``) the count is
    theirs and the target the jobs changed; else ``count`` (a number or a function of the
    result; None for an action on a queue or a schedule, always recorded). ``arguments``
    may be a function of the result too (an edit records the parameters it replaced)."""
    from .claims import with_lock_retry

    db = get_database(db)

    def run() -> T:
        with dialect_for(db).write_transaction(db):
            result = work()
            n = count(result) if callable(count) else count
            changed = target
            if n is None and hasattr(result, "changed_ids"):
                ids = (*result.changed_ids, *result.requested_ids)  # type: ignore[attr-defined]
                n, changed = len(ids), ids
            if n is None or n > 0:
                args = arguments(result) if callable(arguments) else arguments
                record(action, changed, n, arguments=args, actor=actor, where=where, db=db)
        return result

    return with_lock_retry(run)


def list_audit(
    *,
    since: datetime | None = None,
    limit: int = 200,
    db: peewee.Database | None = None,
) -> list[AuditEntry]:
    """The newest ``limit`` rows (newest first), of those at or after ``since``."""
    db = get_database(db)
    query = AuditEntry.select()
    if since is not None:
        query = query.where(AuditEntry.at >= since)
    return list(query.order_by(AuditEntry.at.desc(), AuditEntry.id.desc()).limit(limit).execute(db))


def prune_audit(
    *, older_than: timedelta, max_batches: int | None = None, db: peewee.Database | None = None
) -> int:
    """Delete audit rows older than ``older_than``, one batch per transaction (at most
    ``max_batches``: the supervisor prunes a batch a minute); the count."""
    db = get_database(db)
    dialect = dialect_for(db)
    sql = dialect.sql("DELETE FROM audit_log WHERE id IN (SELECT id FROM audit_log "
                      "WHERE at < :cutoff ORDER BY id LIMIT :batch)")  # fmt: skip
    params = {"cutoff": sql_timestamp(utcnow() - older_than), "batch": PRUNE_BATCH}
    total = batches = 0
    while True:
        with dialect.write_transaction(db):
            deleted = db.execute_sql(sql, params).rowcount
        total += deleted
        batches += 1
        if deleted < PRUNE_BATCH or (max_batches is not None and batches >= max_batches):
            return total


__all__ = ["AuditEntry", "audited", "list_audit", "os_identity", "prune_audit", "record", "scope"]
