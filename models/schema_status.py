"""What ``jobtui db status`` reports, and which live supervisors block a downgrade.

Read with plain SQL over whichever columns the database has, so it works on a database
of any schema version — older (upgrade pending) or newer (written by a newer jobtui) —
and never migrates or writes anything.
"""

from __future__ import annotations

from datetime import datetime

import peewee

from .base import as_datetime
from .clock import utcnow
from .heartbeats import stale_after_s
from .migrations import SCHEMA_VERSION, read_schema_version

TYPE_CHECKING = False  # typing stays unimported at run time (module memory)
if TYPE_CHECKING:
    from typing import Any

#: supervisors.schema_version exists from this schema version on (migrations step 6); a
#: row without one belongs to a jobtui that knew at most the version before it.
SCHEMA_RECORDED_SINCE = 7


def live_supervisors(
    db: peewee.Database, db_version: int, now: datetime | None = None
) -> list[dict[str, Any]]:
    """Supervisors whose heartbeat is fresh (younger than 3 of their intervals), each
    with the jobtui version and schema version it runs. A supervisor that recorded no
    schema (an older jobtui, or a database before version 7) is taken to run the newest
    it could: the database's version then, at most the last before recording began."""
    if not db.table_exists("supervisors"):
        return []
    have = {c.name for c in db.get_columns("supervisors")}
    wanted = ["name", "host", "pid", "heartbeat_at", "version", "heartbeat_interval_s",
              "schema_version"]  # fmt: skip
    columns = [c for c in wanted if c in have]
    rows = db.execute_sql(f"SELECT {', '.join(columns)} FROM supervisors ORDER BY name")
    now = now or utcnow()
    out = []
    for values in rows.fetchall():
        row = dict(zip(columns, values, strict=True))
        beat = as_datetime(row["heartbeat_at"])
        if beat is None or (now - beat).total_seconds() > stale_after_s(
            row.get("heartbeat_interval_s")
        ):
            continue
        recorded = row.get("schema_version")
        out.append({
            "name": row["name"], "host": row["host"], "pid": row["pid"],
            "jobtui_version": row.get("version"),
            "schema_version": recorded,
            "assumed_schema_version": recorded if recorded is not None
            else min(db_version, SCHEMA_RECORDED_SINCE - 1),
            "heartbeat_at": beat,
        })  # fmt: skip
    return out


def schema_status(db: peewee.Database) -> dict[str, Any]:
    """The database's schema version, this jobtui's, and the live supervisors'."""
    version = read_schema_version(db)
    return {
        "schema_version": version,
        "jobtui_schema_version": SCHEMA_VERSION,
        "upgrade_pending": version is not None and version < SCHEMA_VERSION,
        "newer_than_this_jobtui": version is not None and version > SCHEMA_VERSION,
        "supervisors": [] if version is None else live_supervisors(db, version),
    }
