"""SQLite: a safety poll that finds the database unchanged costs one ``PRAGMA``.

The safety poll (``--poll-interval``) is for work no wake-up announced: a job whose
wake-up datagram was lost, a schedule, limit or cancel request written by another
process. Each of those is a commit by another connection, and SQLite counts them:
``PRAGMA data_version`` changes on this connection whenever another connection has
committed since the last read (DESIGN.md: "PRAGMA data_version makes that cheap"). So when
it has not changed since the last full poll, the poll has nothing to find and is skipped:
no claim, no cron tick, no look for limits, no cancel poll. An idle supervisor's poll
was a write transaction of ~8 statements each second (the claim, the staged promotion,
three looks for limits, the schedules read twice); its cost on a machine slow to wake was
4-6 % of a core (README, stop 28).

A poll counts as full only if it claimed: one run while every worker was busy looked for
nothing (nor for new limits, rates or fair keys), so the next poll runs in full too.

What time alone makes due needs no poll: a delayed job's wake-up carries its due time
(a timer), our own retries and held rates arm timers, schedules have their deadline. The
one thing only a poll would find is a delayed job whose wake-up was lost; a full poll
still runs at least every ``FULL_POLL_MAX_S``, so it is late by that at most.

PostgreSQL has no such counter: its poll always runs (on the server, a few index probes).
"""

from __future__ import annotations

import math

import peewee

from jobtui.models.db import is_sqlite

#: A full safety poll at least this often, changed database or not (see above).
FULL_POLL_MAX_S = 10.0


class ChangeWatch:
    """Whether a safety poll may be skipped: SQLite reports no commit by any other
    connection since the last full poll, which ran less than ``FULL_POLL_MAX_S`` ago."""

    def __init__(self, db: peewee.Database) -> None:
        self.db = db
        self.enabled = is_sqlite(db)
        self.conn = None  # the connection the version was read on (a new one: full poll)
        self.version: int | None = None
        self.full_at = -math.inf

    def quiet(self, now_mono: float) -> bool:
        """True: skip this poll. False: run it in full (this read is its starting point,
        so a commit elsewhere after it shows at the next look)."""
        if not self.enabled:
            return False
        try:
            conn = self.db.connection()
            version = conn.execute("PRAGMA data_version").fetchone()[0]
        except Exception:  # noqa: BLE001 - any trouble: poll in full, which reports it
            self.forget()
            return False
        recent = now_mono < self.full_at + FULL_POLL_MAX_S
        if conn is self.conn and version == self.version and recent:
            return True
        self.conn, self.version, self.full_at = conn, version, now_mono
        return False

    def forget(self) -> None:
        """The full poll did not happen (its transaction was refused): the next one runs."""
        self.conn, self.version, self.full_at = None, None, -math.inf
