"""PostgreSQL: the turn's claim on a second connection, run while the turn's writes run.

A PostgreSQL supervisor is a serial chain: it sends its turn (outcomes, heartbeat, claim)
on one connection and waits for that one backend; in a drain it waits 75 % of its time,
the claim a quarter of that (README, issue 17). The plain claim (no concurrency limit,
rate, key limit or fair key anywhere: one ``UPDATE ... RETURNING``) needs nothing the
turn writes, so it is sent first, on a connection of its own in non-blocking mode and
autocommit, and collected after the turn's transaction commits: the two backends work at
once. No thread: the loop forks its workers (RELIABILITY.md fact 3), and the connection is
closed before every fork (``close``) and reopened at the next claim.

What a claim sees changes only in time: it runs beside the turn's writes instead of after
them, so the jobs those writes end count as running to it a turn longer, which only a
concurrency limit would read (and then the claim stays in the turn). A claim whose answer
is lost with its connection behaves as a turn whose ``COMMIT`` answer is lost: rows the
server did claim wait for their lease to lapse and are recovered (recovery.py).
"""

from __future__ import annotations

import logging
import select

import peewee

from jobtui.models.claims import ClaimedJob, _claim_params, _claimed
from jobtui.models.clock import utcnow
from jobtui.models.dialect import dialect_for

from .logline import first_line

TYPE_CHECKING = False  # typing stays unimported at run time (module memory)
if TYPE_CHECKING:
    from collections.abc import Sequence

log = logging.getLogger(__name__)

#: How the server lists this connection (pg_stat_activity.application_name).
APPLICATION_NAME = "jobtui-claims"


class ParallelClaim:
    """One claim at a time, in flight on the supervisor's second connection."""

    def __init__(self, db: peewee.Database, supervisor_name: str) -> None:
        self.db = db
        self.supervisor_name = supervisor_name
        self.conn = None
        self.cursor = None

    def _wait(self) -> None:
        """Poll the non-blocking connection until its current operation is done."""
        import psycopg2.extensions as ext

        while True:
            state = self.conn.poll()
            if state == ext.POLL_OK:
                return
            if state == ext.POLL_WRITE:
                select.select([], [self.conn.fileno()], [])
            else:
                select.select([self.conn.fileno()], [], [])

    def send(self, limit: int, queues: Sequence[str] | None, tasks: Sequence[str]) -> bool:
        """Start the claim; False when it could not be sent (the turn claims as before)."""
        try:
            if self.conn is None:
                import psycopg2

                params = {**self.db.connect_params, "application_name": APPLICATION_NAME}
                self.conn = psycopg2.connect(dbname=self.db.database, async_=1, **params)
                self._wait()
            dialect = dialect_for(self.db)
            params = _claim_params(dialect, limit, queues, tasks, None, self.supervisor_name,
                                   utcnow())  # fmt: skip
            self.cursor = self.conn.cursor()
            self.cursor.execute(dialect.claim_statement(None if queues is None else len(queues)),
                                params)  # fmt: skip
            return True
        except Exception as exc:  # noqa: BLE001 - any failure: the turn claims in its transaction
            log.warning("claim connection unavailable (claims in the turn meanwhile): %s",
                        first_line(exc))  # fmt: skip
            self.close()
            return False

    def collect(self) -> list[ClaimedJob]:
        """The claimed jobs, in claim order; none when the answer was lost (logged)."""
        if self.cursor is None:
            return []
        try:
            self._wait()
            return _claimed(self.cursor.fetchall())
        except Exception as exc:  # noqa: BLE001 - lost: what it claimed is recovered later
            log.warning("claim connection lost mid-claim (its jobs, if any, are recovered "
                        "when their lease lapses): %s", first_line(exc))  # fmt: skip
            self.close()
            return []
        finally:
            self.cursor = None

    def close(self) -> None:
        """Before a fork and at exit: a worker must never inherit this connection."""
        if self.conn is not None:
            try:
                self.conn.close()
            except Exception:  # noqa: BLE001, S110 - already gone
                pass
        self.conn = self.cursor = None
