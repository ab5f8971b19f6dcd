"""Which database jobtui uses and how a connection to it is set up.

One URL names the database (playhouse.db_url form). It comes from ``--database``, then
``JOBTUI_DATABASE``, then a SQLite file under ``$XDG_DATA_HOME/jobtui/``. SQLite is
opened in WAL mode with a busy timeout and ``synchronous=NORMAL`` (RELIABILITY.md);
PostgreSQL with a connect timeout so an unreachable server is reported, not waited on.
This is the only module that constructs a Database object.
"""

from __future__ import annotations

import logging
import os
import re
import select
from pathlib import Path
from urllib.parse import unquote, urlsplit

import peewee

from .errors import ConfigurationError, DatabaseUnavailable, NoDatabase, StoreError

log = logging.getLogger(__name__)

ENV_VAR = "JOBTUI_DATABASE"
SQLITE_BUSY_TIMEOUT_MS = 10_000
POSTGRES_CONNECT_TIMEOUT_S = 5

#: Every model binds to this proxy; ``use_database`` points it at a real database.
database_proxy = peewee.DatabaseProxy()


def default_database_url() -> str:
    """The embedded default: ``jobtui.db`` under ``$XDG_DATA_HOME/jobtui``."""
    data_home = os.environ.get("XDG_DATA_HOME") or os.path.join(
        os.path.expanduser("~"), ".local", "share"
    )
    return "sqlite:///" + os.path.join(data_home, "jobtui", "jobtui.db")


def resolve_database_url(explicit: str | None = None) -> str:
    """The URL in force: the flag, then the environment, then the default file."""
    return explicit or os.environ.get(ENV_VAR) or default_database_url()


def redact_url(url: str) -> str:
    """The URL with any password replaced, for headers, logs and error messages."""
    return re.sub(r"(://[^/:@]+):[^/@]*@", r"\1:***@", url)


def _sqlite_path(url: str) -> str:
    # sqlite:////abs/path (absolute), sqlite:///rel/path (relative), sqlite:///:memory:
    rest = url.split("://", 1)[1]
    if not rest.startswith("/"):
        raise ConfigurationError(f"bad SQLite URL {url!r}: expected sqlite:///PATH")
    path = unquote(rest[1:].split("?", 1)[0])
    return path or ":memory:"


#: Peewee's translation of driver errors into its own (a module name: inside a class body
#: the double underscore would be mangled).
_PEEWEE_ERRORS = getattr(peewee, "__exception_wrapper__")  # noqa: B009


#: Set on a driver error whose statement may have committed before the connection died
#: (``classify_error`` then raises CommitUncertain instead of ConnectionLost).
MAY_HAVE_COMMITTED = "jobtui_may_have_committed"


class _Reconnecting:
    """A connection that broke while idle is replaced before the next statement.

    A long-lived process (a web application) keeps its connection across database
    restarts (RELIABILITY.md, "Learned while building"); Peewee would hand out the dead
    connection ("connection already closed") until the process restarts. So before a
    statement outside any transaction, and before BEGIN, the connection is checked at no
    round-trip cost (``_broken_while_idle``) and a dead one dropped: Peewee then connects
    afresh. Inside a transaction nothing is replaced (its work is lost with the
    connection: the caller must see that). A statement that was on the wire when the
    connection died and may have committed (autocommit, or the COMMIT itself) has its
    error marked ``MAY_HAVE_COMMITTED``, so no caller retries it blindly.
    """

    def _broken_while_idle(self, conn) -> str | None:  # noqa: ANN001 - the driver's connection
        """Why this idle connection is unusable, or None (each engine's own test)."""
        raise NotImplementedError

    def _lost_in_flight(self) -> bool:
        """Whether the connection died under the statement that just failed."""
        return False

    def _replace_if_broken(self) -> None:
        state = self._state
        if state.closed or state.transactions:
            return
        reason = self._broken_while_idle(state.conn)
        if reason is None:
            return
        log.warning("database connection lost while idle (%s); reconnecting", reason)
        try:
            self._close(state.conn)
        except Exception:  # noqa: BLE001 - it is dead already; only its resources matter
            pass
        state.reset()

    def _mark_if_lost(self, exc: BaseException) -> None:
        if self._lost_in_flight():
            setattr(exc, MAY_HAVE_COMMITTED, True)

    def execute_sql(self, sql, params=None):  # noqa: ANN001, ANN201 - Peewee's signature
        idle = not self._state.transactions
        if idle:
            self._replace_if_broken()
        try:
            return super().execute_sql(sql, params)
        except peewee.PeeweeException as exc:
            if idle and not sql.lstrip()[:6].upper() == "SELECT":
                self._mark_if_lost(exc)  # an autocommit write: it may have committed
            raise

    def begin(self, *args, **kwargs) -> None:  # noqa: ANN002, ANN003 - Peewee's signature
        self._replace_if_broken()
        super().begin(*args, **kwargs)

    def commit(self) -> None:
        was_open = not self._state.closed and not self._lost_in_flight()
        try:
            super().commit()
        except peewee.PeeweeException as exc:
            if was_open:
                self._mark_if_lost(exc)
            raise


class SqliteDatabase(_Reconnecting, peewee.SqliteDatabase):
    """SQLite, replacing a connection handle that was closed under it."""

    def _broken_while_idle(self, conn) -> str | None:  # noqa: ANN001
        try:
            conn.in_transaction  # noqa: B018 - raises on a closed handle, costs nothing
        except Exception as exc:  # noqa: BLE001 - sqlite3.ProgrammingError
            return str(exc) or type(exc).__name__
        return None


def _fatal(conn) -> str | None:  # noqa: ANN001 - psycopg2's connection
    """The FATAL message the server sent before closing the session, if it did."""
    fatal = [n.strip() for n in conn.notices if n.startswith("FATAL")]
    return fatal[-1] if fatal else None


class PostgresDatabase(_Reconnecting, peewee.PostgresqlDatabase):
    """PostgreSQL, with each transaction's BEGIN sent along with its first statement.

    Peewee runs psycopg2 in autocommit mode and sends BEGIN on its own: a round trip of
    the few a transaction makes, and what bounds the supervisor's turn on PostgreSQL is
    round trips (README, "PostgreSQL"). Here ``begin`` only notes the BEGIN; the first
    statement carries it ("BEGIN; ..." is one simple query), a transaction that ran
    nothing sends neither BEGIN nor COMMIT, and a cursor taken directly (``executemany``)
    sends the BEGIN first. The note belongs to the connection it was made on: after a
    reconnect it is void.

    An idle connection the server closed (a restart, ``pg_terminate_backend``) has sent
    its FATAL message and end of file: its socket is readable while nothing was asked,
    which a zero-timeout poll sees without a round trip.
    """

    def _broken_while_idle(self, conn) -> str | None:  # noqa: ANN001 - psycopg2's connection
        if conn.closed:
            return "connection already closed"
        kept = getattr(self._state, "idle_poller", None)  # one per connection: every
        if kept is None or kept[0] is not conn:  # autocommit statement asks
            poller = select.poll()
            poller.register(conn.fileno(), select.POLLIN)
            kept = self._state.idle_poller = (conn, poller)
        poller = kept[1]
        for _ in range(2):  # libpq reads the FATAL as a notice first, then meets the end
            if not poller.poll(0):
                return None  # nothing (more) to read: as alive as a round trip would show
            try:
                conn.poll()  # a notice or notification is consumed; the end of file raises
            except Exception as exc:  # noqa: BLE001 - psycopg2.Error of any kind
                return _fatal(conn) or str(exc).strip().splitlines()[0]
            if _fatal(conn):  # a FATAL ends the session: its end of file may be on its way
                return _fatal(conn)
        return "server closed the connection"

    def _lost_in_flight(self) -> bool:
        conn = self._state.conn
        return conn is not None and bool(conn.closed)

    def begin(self, isolation_level: int | None = None) -> None:
        self._replace_if_broken()
        level = self._isolation_level if isolation_level is None else isolation_level
        statement = "BEGIN"
        if level:
            statement += " TRANSACTION ISOLATION LEVEL " + self._adapter.isolation_level_str(level)
        with _PEEWEE_ERRORS:  # a dead connection fails here, as Peewee's own BEGIN would
            super().cursor()  # connected now (autoconnect), as Peewee's own BEGIN would be
        self._state.deferred_begin = (self._state.conn, statement)

    def _take_begin(self) -> str | None:
        noted = getattr(self._state, "deferred_begin", None)
        if noted is None:
            return None
        self._state.deferred_begin = None
        return noted[1] if noted[0] is self._state.conn else None

    def execute_sql(self, sql, params=None):  # noqa: ANN001, ANN201 - Peewee's signature
        begin = self._take_begin()
        return super().execute_sql(sql if begin is None else f"{begin};\n{sql}", params)

    def cursor(self, named_cursor=None):  # noqa: ANN001, ANN201 - Peewee's signature
        cursor = super().cursor(named_cursor)
        begin = self._take_begin()
        if begin is not None:  # used directly, not through execute_sql
            with _PEEWEE_ERRORS:
                cursor.execute(begin)
        return cursor

    def commit(self) -> None:
        if self._take_begin() is None:
            super().commit()  # (_Reconnecting's: a COMMIT lost on the wire is marked)

    def rollback(self) -> None:
        if self._take_begin() is None:
            super().rollback()


def open_database(url: str, *, create_dirs: bool = False, create: bool = True) -> peewee.Database:
    """A new, unconnected Database for ``url``; refuses what cannot work with a clear error.

    ``create_dirs`` makes the SQLite file's folder (only the XDG default should do that:
    a folder the user named that does not exist is almost always a typo). ``create=False``
    refuses a SQLite file that does not exist yet (a command that only reads must not
    leave an empty database behind a typo).
    """
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme == "sqlite":
        path = _sqlite_path(url)
        if path != ":memory:" and not path.startswith("file:"):
            if Path(path).expanduser().is_dir():
                raise ConfigurationError(
                    f"cannot open SQLite database {path}: it is a directory; name a file in "
                    f"it, e.g. sqlite:///{Path(path) / 'jobtui.db'}"
                )
            folder = Path(path).expanduser().resolve().parent
            if not folder.is_dir() and not create_dirs:
                raise ConfigurationError(
                    f"cannot open SQLite database {path}: directory {folder} does not exist"
                )
            if not create and not Path(path).expanduser().exists():
                raise NoDatabase(
                    f"no jobtui database at {path} (nothing was created): any write "
                    "creates it (jobtui enqueue, or starting jobtui-supervisor)"
                )
            folder.mkdir(parents=True, exist_ok=True)  # create_dirs, or already there
        return SqliteDatabase(
            path,
            timeout=SQLITE_BUSY_TIMEOUT_MS / 1000,
            pragmas={
                "journal_mode": "wal",
                "busy_timeout": SQLITE_BUSY_TIMEOUT_MS,
                "synchronous": "normal",
                "foreign_keys": 1,
            },
            check_same_thread=False,
        )
    if scheme in ("postgres", "postgresql"):
        parts = urlsplit(url)
        params: dict[str, object] = {"connect_timeout": POSTGRES_CONNECT_TIMEOUT_S}
        if parts.username:
            params["user"] = unquote(parts.username)
        if parts.password:
            params["password"] = unquote(parts.password)
        if parts.hostname:
            params["host"] = parts.hostname
        if parts.port:
            params["port"] = parts.port
        name = unquote(parts.path.lstrip("/")) or "postgres"
        try:
            return PostgresDatabase(name, autorollback=False, **params)
        except peewee.ImproperlyConfigured as exc:
            raise ConfigurationError(
                "PostgreSQL needs a driver: pip install 'jobtui[postgres]'"
            ) from exc
    raise ConfigurationError(
        f"unsupported database URL {redact_url(url)!r}: use sqlite:///PATH or postgresql://..."
    )


def connect(db: peewee.Database, url: str | None = None) -> None:
    """Open ``db``'s connection for this thread, turning driver errors into one clear line."""
    try:
        db.connect(reuse_if_open=True)
    except peewee.ImproperlyConfigured as exc:  # Peewee found no driver for the engine
        raise ConfigurationError(
            "PostgreSQL needs a driver: pip install 'jobtui[postgres]'"
            if isinstance(db, peewee.PostgresqlDatabase) else f"cannot open database: {exc}"
        ) from exc  # fmt: skip
    except peewee.OperationalError as exc:
        where = redact_url(url) if url else str(db.database)
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DatabaseUnavailable(f"cannot reach database {where}: {reason}") from exc
    except peewee.DatabaseError as exc:
        raise StoreError(f"cannot open database: {exc}") from exc


def is_sqlite(db: peewee.Database) -> bool:
    """True for SQLite, the one question the rest of the code may ask about the engine."""
    if isinstance(db, peewee.DatabaseProxy):
        db = db.obj
    return isinstance(db, peewee.SqliteDatabase)
