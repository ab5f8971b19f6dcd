"""Opening the database and registering the supervisor, refusing a live namesake."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable

import peewee

from jobtui import __version__
from jobtui.models.claims import LOCKED_RETRY_DEADLINE_S, with_lock_retry
from jobtui.models.db import is_sqlite
from jobtui.models.dialect import dialect_for
from jobtui.models.errors import ConfigurationError, ConnectionLost, DiskFull, StoreError
from jobtui.models.heartbeats import register_supervisor
from jobtui.models.migrations import SCHEMA_VERSION
from jobtui.models.staging import promote_all
from jobtui.models.store import classify_error, use_database
from jobtui.models.worker import Supervisor as SupervisorRow
from jobtui.registry import TaskRegistry

from . import procinfo
from .catalog import publish_catalog
from .config import SupervisorConfig
from .wakeup import WakeListener

TYPE_CHECKING = False  # typing stays unimported at run time (module memory)
if TYPE_CHECKING:
    from typing import TypeVar

    T = TypeVar("T")

log = logging.getLogger(__name__)

#: The loop's statements wait this long for SQLite's write lock, then retry next turn.
LOOP_LOCK_WAIT_MS = 250
#: The daemon touches the heads of a few indexes; SQLite's default 2 MB cache is memory
#: it would keep for pages it reads once (retention, sweeps).
SUPERVISOR_PAGE_CACHE_KB = 512
#: How long a start-up write retries a connection the server cut (a restart).
RECONNECT_FOR_S = 30.0


def open_and_register(
    config: SupervisorConfig, registry: TaskRegistry
) -> tuple[peewee.Database, WakeListener | None]:
    """Open the database and write our Supervisor row. On SQLite the wake-up socket is
    bound first: an enqueue that sees our row finds our socket too, and no wake-up (nor
    the due time it announces) falls between the two."""
    db = _while_passing(None, lambda: use_database(config.database_url))
    wake = WakeListener(db, config.name) if is_sqlite(db) else None
    try:
        # At start there is no loop to retry on its next turn: a write lock held elsewhere
        # (a busy or stopped writer) is waited out with backoff, and a connection the
        # server cut (a restart) reopened, rather than ending the start — from the first
        # statement on (the session's settings).
        _while_passing(db, lambda: _configure_session(db))
        _while_passing(db, lambda: _register(db, config, registry))
        _while_passing(db, lambda: _declare_task_schedules(db, registry))
        _while_passing(db, lambda: _declare_task_flow(db, registry))
        # jobs enqueued while no supervisor ran, all staged (staging.py): into the claim
        # indexes before the first claim, so it takes them in priority order
        _while_passing(db, lambda: promote_all(db))
    except peewee.PeeweeException as exc:
        if wake is not None:
            wake.close()
        raise classify_error(exc) from exc
    except BaseException:
        if wake is not None:
            wake.close()
        raise
    return db, wake


def _while_passing(db: peewee.Database | None, step: Callable[[], T]) -> T:
    """Run a start-up step, waiting out passing database trouble: a lock for up to a
    minute (``with_lock_retry``), a full disk as long (someone frees space; the loop
    later waits the same way), a connection the server cut for ``RECONNECT_FOR_S``.
    A database that cannot be reached at all still fails the start at once."""
    started = time.monotonic()
    pause = 0.05
    while True:
        try:
            return with_lock_retry(step)
        except (peewee.OperationalError, peewee.InterfaceError, StoreError) as exc:
            trouble = exc if isinstance(exc, StoreError) else classify_error(exc)
            if isinstance(trouble, ConnectionLost):
                patience = RECONNECT_FOR_S
            elif isinstance(trouble, DiskFull):
                patience = LOCKED_RETRY_DEADLINE_S
            else:
                patience = 0.0
            if time.monotonic() - started >= patience:
                if trouble is exc:
                    raise
                raise trouble from exc
            log.warning("%s; retrying in %.2f s", trouble, pause)
        if db is not None:
            try:
                db.close()  # reconnect on the next try
            except peewee.PeeweeException:
                pass
        time.sleep(pause)
        pause = min(1.0, pause * 2)


def _configure_session(db: peewee.Database) -> None:
    """The loop's short lock wait and small page cache, kept across reconnections."""
    dialect_for(db).set_lock_wait(db, LOOP_LOCK_WAIT_MS)
    dialect_for(db).set_page_cache(db, SUPERVISOR_PAGE_CACHE_KB)


def _register(db: peewee.Database, config: SupervisorConfig, registry: TaskRegistry) -> None:
    """Write our Supervisor row, refusing a live namesake and recovering a dead one's runs."""
    existing = SupervisorRow.get_or_none(SupervisorRow.name == config.name)
    me = os.getpid()
    if existing is not None and existing.pid != me:
        same_host = existing.host == config.host
        if same_host and procinfo.is_running(existing.pid, existing.process_started_at):
            raise ConfigurationError(
                f"a supervisor named {config.name} is already running (pid {existing.pid})"
            )
        log.info("taking over the name %s from a stopped supervisor (pid %d on %s)",
                 config.name, existing.pid, existing.host)  # fmt: skip
    with dialect_for(db).write_transaction(db):
        if existing is not None and existing.pid != me:
            _recover_namesake(db, config, existing.pid)
        register_supervisor(db, {
            "name": config.name, "host": config.host, "pid": me,
            "process_started_at": procinfo.start_time(me), "state": "running",
            "tasks": {name: registry.get(name).registered_defaults
                      for name in registry.names()},
            "version": __version__,
            "queues": {g.label: g.size for g in config.groups},
            "heartbeat_interval_s": config.heartbeat_interval_s,
            "schema_version": SCHEMA_VERSION,
        })  # fmt: skip
        # with our row, so whoever sees us running also finds our tasks' defaults
        publish_catalog(db, config, registry, in_transaction=True)
        from jobtui.models.scaling import register_scaling

        register_scaling(db, config.name, {q: (lo, hi) for q, lo, hi in config.autoscale})


def _declare_task_schedules(db: peewee.Database, registry: TaskRegistry) -> None:
    """``@task(cron=...)``: a schedule named after the task, upserted at every start."""
    from jobtui.models.scheduling import upsert_schedule

    for name in registry.names():
        task = registry.get(name)
        if task is not None and task.cron:
            options = {k: v for k, v in task.defaults.items() if v is not None}
            upsert_schedule(name, task.cron, name, options=options, enabled=None, db=db)
            log.info("schedule %s: %s", name, task.cron)


def _declare_task_flow(db: peewee.Database, registry: TaskRegistry) -> None:
    """``@task(rate_limit=, key_concurrency=)``: the task's rate and key limit, upserted
    at every start (an operator's ``jobtui rate`` / ``jobtui limit`` stands over them)."""
    from jobtui.models.key_limits import set_key_limit
    from jobtui.models.rates import set_rate

    for name in registry.names():
        task = registry.get(name)
        if task is None:
            continue
        if task.rate_limit is not None:
            set_rate(f"task:{name}", task.rate_limit, declared=True, db=db)
            log.info("rate %s on task %s", task.rate_limit, name)
        if task.key_concurrency is not None:
            set_key_limit(f"task:{name}", task.key_concurrency, declared=True, db=db)
            log.info("key concurrency %d on task %s", task.key_concurrency, name)


def _recover_namesake(db: peewee.Database, config: SupervisorConfig, old_pid: int) -> None:
    """Runs left by the dead previous holder of our name: only we would ever look at them."""
    from jobtui.models.clock import utcnow
    from jobtui.models.outcomes import Outcome, apply_outcome
    from jobtui.models.rollup import Tally

    dialect = dialect_for(db)
    tally = Tally(utcnow())  # the ends counted in one rollup write (rollup.tally_ended)
    rows = db.execute_sql(
        dialect.sql(
            "SELECT id, attempt FROM jobs WHERE status = 'running' AND supervisor_name = :me"
        ),
        {"me": config.name},
    ).fetchall()
    for job_id, attempt in rows:
        reason = f"supervisor {config.name} died (pid {old_pid})"
        status = apply_outcome(db, Outcome(
            job_id=job_id, attempt=int(attempt), lease_token=None, kind="failed", error=reason,
            error_type="WorkerLost", attempt_outcome="crashed",
            worker={"supervisor_name": config.name, "host": config.host},
        ), tally=tally)  # fmt: skip
        log.warning("job %s attempt %s recovered: %s -> %s", job_id, attempt, reason, status,
                    extra={"job_id": job_id, "attempt": int(attempt)})  # fmt: skip
    tally.write(db)
