"""Job logs: what a task wrote to stdout, stderr and ``logging``, kept per job.

A worker captures its task's output (supervisor/capture.py) and sends it in chunks, a
few lines at a time, with its outcomes and progress; the supervisor writes each chunk as
one row in its group commit, never a write per line. A row is keyed by (job, attempt,
seq): ``seq`` counts the chunks of one run, so a retry's lines follow the first attempt's
and a reader tailing a running job asks for what came after the last key it saw.

``lines`` holds a JSON array of ``[unix_time, stream, text]`` (stream: ``out``, ``err``
or ``log``). ``dropped`` / ``dropped_lines`` are the run's totals so far of what was not
kept over ``--max-log-bytes``. The rows go with their job (a foreign key that cascades):
retention, ``jobtui delete`` and purges remove them without code of their own.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass

import peewee

from .base import BaseModel, UTCDateTime
from .dialect import dialect_for
from .job import Job

TYPE_CHECKING = False  # typing stays unimported at run time (module memory)
if TYPE_CHECKING:
    from typing import Any

#: The streams a line can come from, as stored.
STREAMS = ("out", "err", "log")


class JobLog(BaseModel):
    """One chunk of a run's output, as its worker sent it."""

    job = peewee.ForeignKeyField(Job, column_name="job_id", on_delete="CASCADE", index=False)
    attempt = peewee.IntegerField()
    seq = peewee.IntegerField()
    at = UTCDateTime(null=True)  # when the chunk was written
    lines = peewee.TextField()  # JSON: [[unix_time, stream, text], ...]
    dropped = peewee.BigIntegerField(default=0)  # bytes not kept so far in this run
    dropped_lines = peewee.IntegerField(default=0)

    class Meta:
        table_name = "job_logs"
        primary_key = peewee.CompositeKey("job", "attempt", "seq")


#: Fenced by the job's existence: a chunk of a run whose job was deleted meanwhile (its
#: lease lost, an operator's delete) is dropped instead of failing the group commit.
INSERT_CHUNK = """INSERT INTO job_logs (job_id, attempt, seq, at, lines, dropped, dropped_lines)
SELECT :id, :attempt, :seq, :at, :lines, :dropped, :dropped_lines
WHERE EXISTS (SELECT 1 FROM jobs WHERE id = :id)"""


@dataclass(frozen=True)
class LogLine:
    """One line of a job's log, as readers show it."""

    attempt: int
    at: float  # unix time
    stream: str
    text: str


@dataclass(frozen=True)
class LogPage:
    """What a read found: the lines after the cursor, the new cursor, and what was not
    kept (per attempt, the run's latest totals: bytes, lines)."""

    lines: list[LogLine]
    cursor: tuple[int, int]
    dropped: dict[int, tuple[int, int]]


_READ = """SELECT attempt, seq, lines, dropped, dropped_lines FROM job_logs
WHERE job_id = :id AND (attempt > :attempt OR (attempt = :attempt AND seq > :seq))
ORDER BY attempt, seq LIMIT :limit"""


def read_log(
    job_id: str,
    *,
    after: tuple[int, int] = (0, -1),
    limit: int = 1000,
    db: peewee.Database | str | None = None,
) -> LogPage:
    """The chunks of ``job_id``'s log after ``after`` = (attempt, seq), at most ``limit``
    of them, flattened into lines. Pass the returned cursor back to follow a running job."""
    from .store import get_database

    database = get_database(db)
    rows = database.execute_sql(
        dialect_for(database).sql(_READ),
        {"id": job_id, "attempt": after[0], "seq": after[1], "limit": int(limit)},
    ).fetchall()
    lines: list[LogLine] = []
    dropped: dict[int, tuple[int, int]] = {}
    cursor = after
    for attempt, seq, text, lost, lost_lines in rows:
        cursor = (int(attempt), int(seq))
        for item in _decode(text):
            lines.append(LogLine(int(attempt), *item))
        if lost or lost_lines:
            dropped[int(attempt)] = (int(lost or 0), int(lost_lines or 0))
    return LogPage(lines, cursor, dropped)


def _decode(text: Any) -> Iterator[tuple[float, str, str]]:
    """The lines of a chunk; a malformed one (written by hand, damaged) shows as itself."""
    try:
        items = json.loads(text) if isinstance(text, str) else text
    except ValueError:
        yield (0.0, "err", str(text))
        return
    if not isinstance(items, list):
        return
    for item in items:
        if isinstance(item, list) and len(item) == 3:
            at, stream, line = item
            yield (float(at) if isinstance(at, (int, float)) else 0.0, str(stream), str(line))


def dropped_note(lost: int, lost_lines: int) -> str:
    """How a reader says that part of a run's output was not kept."""
    return (
        f"… {lost:,} bytes ({lost_lines:,} lines) dropped: over the supervisor's "
        "--max-log-bytes for one run"
    )
