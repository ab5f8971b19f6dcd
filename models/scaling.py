"""Live scaling through the database: ``jobtui scale`` asks, the supervisor applies.

The console and the CLI never talk to a supervisor except through the database
(DESIGN.md), so a scale request is a column of the supervisor's row
(``supervisors.scale_request``: ``{queue: N}``), followed by a wake-up on the paths an
enqueue already uses (a datagram beside the SQLite file, ``NOTIFY jobtui_wake`` on
PostgreSQL) with the payload ``scale``. The supervisor reads its request at once on such a
wake-up, and at every heartbeat in any case (a wake-up can be lost); it applies it, writes
its new worker counts (``supervisors.queues``) and removes what it applied from the
request. The requester waits until the row says so.

A queue's workers are the group of its own (``--queue NAME=N``, ``--autoscale``), or the
shared ones under the label ``*`` (or the bare ``--queue`` names joined by commas). A
supervisor whose shared workers serve a queue gets a group of its own for it on request.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from datetime import datetime

import peewee

from .base import as_datetime, dumps
from .clock import utcnow
from .dialect import dialect_for
from .errors import JobtuiError
from .heartbeats import stale_after_s

TYPE_CHECKING = False  # typing stays unimported at run time (module memory)
if TYPE_CHECKING:
    from typing import Any

#: The wake-up payload that tells supervisors to read their scale request now.
SCALE_WAKE = "scale"
#: The most workers one queue of one supervisor may be scaled to (a typo must not fork
#: ten thousand processes).
MAX_WORKERS_PER_QUEUE = 256
SHARED = "*"

_READ_REQUEST = "SELECT scale_request FROM supervisors WHERE name = :name"
_WRITE_REQUEST = "UPDATE supervisors SET scale_request = :request WHERE name = :name"
_APPLIED = """UPDATE supervisors SET queues = :queues, scale_request = :request
WHERE name = :name AND pid = :pid"""
_REGISTER = """UPDATE supervisors SET scale_request = NULL, autoscale = :autoscale
WHERE name = :name"""


class ScaleError(JobtuiError):
    """The scale request cannot be made."""


def _loaded(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return None
    return value


def _counts(value: Any) -> dict[str, int]:
    """A ``{queue: N}`` JSON value, with anything malformed left out."""
    value = _loaded(value)
    if not isinstance(value, dict):
        return {}
    out = {}
    for key, count in value.items():
        try:
            out[str(key)] = int(count)
        except (TypeError, ValueError):
            continue
    return out


def _bounds(value: Any) -> dict[str, tuple[int, int]]:
    value = _loaded(value)
    out: dict[str, tuple[int, int]] = {}
    if isinstance(value, dict):
        for key, pair in value.items():
            try:
                low, high = int(pair[0]), int(pair[1])
            except (TypeError, ValueError, IndexError, KeyError):
                continue
            out[str(key)] = (low, high)
    return out


def serves(queues: Mapping[str, int], queue: str) -> bool:
    """Whether a supervisor with these worker groups runs jobs of ``queue``."""
    for label in queues:
        if label in (queue, SHARED) or queue in label.split(","):
            return True
    return False


def describe_queues(queues: Any, autoscale: Any = None) -> str:
    """``emails=4 (auto 1-8), *=2``: each group's workers, with its autoscale bounds."""
    counts, bounds = _counts(queues), _bounds(autoscale)
    parts = []
    for label, count in counts.items():
        bound = bounds.get(label)
        parts.append(f"{label}={count}" + (f" (auto {bound[0]}-{bound[1]})" if bound else ""))
    return ", ".join(parts)


# ------------------------------------------------------------------ the requester


def live_supervisors(db: peewee.Database, now: datetime | None = None) -> list[dict[str, Any]]:
    """Supervisors whose heartbeat is fresh (within 3 of their intervals), with their
    worker groups (``queues``), autoscale bounds and pending request."""
    now = now or utcnow()
    rows = db.execute_sql(
        "SELECT name, host, pid, heartbeat_at, heartbeat_interval_s, queues, autoscale,"
        " scale_request FROM supervisors ORDER BY name"
    ).fetchall()
    out = []
    for name, host, pid, beat, interval, queues, autoscale, request in rows:
        beat = as_datetime(beat)
        if beat is None or (now - beat).total_seconds() > stale_after_s(interval):
            continue
        out.append({"name": name, "host": host, "pid": pid, "queues": _counts(queues),
                    "autoscale": _bounds(autoscale), "scale_request": _counts(request)})  # fmt: skip
    return out


def pick_supervisor(
    db: peewee.Database, queue: str, supervisor: str | None = None
) -> dict[str, Any]:
    """The one live supervisor to scale ``queue`` on: ``supervisor`` if given (it must be
    live and serve the queue), else the only live one that serves it."""
    live = live_supervisors(db)
    if supervisor is not None:
        found = [s for s in live if s["name"] == supervisor]
        if not found:
            raise ScaleError(f"no live supervisor named {supervisor!r}")
        if not serves(found[0]["queues"], queue):
            groups = describe_queues(found[0]["queues"]) or "none"
            raise ScaleError(f"supervisor {supervisor} does not serve queue {queue!r} "
                             f"(its workers: {groups})")  # fmt: skip
        return found[0]
    serving = [s for s in live if serves(s["queues"], queue)]
    if not serving:
        raise ScaleError(f"no live supervisor serves queue {queue!r}")
    if len(serving) > 1:
        names = ", ".join(s["name"] for s in serving)
        raise ScaleError(f"{len(serving)} live supervisors serve queue {queue!r} ({names}): "
                         "name one with --supervisor")  # fmt: skip
    return serving[0]


def check_count(target: Mapping[str, Any], queue: str, count: int) -> None:
    """Refuse a count out of range, or outside the queue's autoscale bounds."""
    if count < 0 or count > MAX_WORKERS_PER_QUEUE:
        raise ScaleError(f"N must be from 0 to {MAX_WORKERS_PER_QUEUE}, got {count}")
    bounds = target["autoscale"].get(queue)
    if bounds is not None and not bounds[0] <= count <= bounds[1]:
        raise ScaleError(f"queue {queue!r} autoscales from {bounds[0]} to {bounds[1]} workers "
                         f"on {target['name']}: N must be within them")  # fmt: skip


def request_scale(db: peewee.Database, supervisor: str, queue: str, count: int) -> None:
    """Ask ``supervisor`` for ``count`` workers on ``queue`` (merged into what it was
    already asked), and wake it."""
    from .wakeup import poke

    dialect = dialect_for(db)
    with dialect.write_transaction(db):
        row = db.execute_sql(dialect.sql(_READ_REQUEST), {"name": supervisor}).fetchone()
        if row is None:
            raise ScaleError(f"supervisor {supervisor} stopped")
        request = {**_counts(row[0]), queue: int(count)}
        db.execute_sql(dialect.sql(_WRITE_REQUEST), {"name": supervisor, "request": dumps(request)})
        dialect.notify(db, SCALE_WAKE)
    poke(db, SCALE_WAKE)


def wait_applied(
    db: peewee.Database, supervisor: str, queue: str, count: int, timeout_s: float
) -> dict[str, Any] | None:
    """The supervisor's row once it applied the request (its queues say ``count`` and the
    request no longer holds ``queue``), or None when ``timeout_s`` passed first. Raises
    when the supervisor refused it or stopped."""
    dialect = dialect_for(db)
    deadline = time.monotonic() + timeout_s
    pause = 0.02
    while True:
        row = db.execute_sql(dialect.sql(
            "SELECT queues, scale_request, autoscale FROM supervisors WHERE name = :name"),
            {"name": supervisor}).fetchone()  # fmt: skip
        if row is None:
            raise ScaleError(f"supervisor {supervisor} stopped before applying the request")
        queues, request = _counts(row[0]), _counts(row[1])
        if queue not in request:
            if queues.get(queue) != count:
                raise ScaleError(f"supervisor {supervisor} refused: it does not serve queue "
                                 f"{queue!r} (see its log)")  # fmt: skip
            return {"queues": queues, "autoscale": _bounds(row[2])}
        if time.monotonic() >= deadline:
            return None
        time.sleep(pause)
        pause = min(0.2, pause * 1.5)


# ------------------------------------------------------------------ the supervisor


def register_scaling(
    db: peewee.Database, name: str, autoscale: Mapping[str, tuple[int, int]]
) -> None:
    """At start: no request left by a namesake, and our autoscale bounds (NULL: none).
    The caller holds a write transaction."""
    value = dumps({q: list(b) for q, b in autoscale.items()}) if autoscale else None
    db.execute_sql(dialect_for(db).sql(_REGISTER), {"name": name, "autoscale": value})


def read_scale_request(db: peewee.Database, name: str) -> dict[str, int]:
    """What ``jobtui scale`` asked of supervisor ``name`` and it has not applied yet."""
    row = db.execute_sql(dialect_for(db).sql(_READ_REQUEST), {"name": name}).fetchone()
    return {} if row is None else _counts(row[0])


def write_scaled(
    db: peewee.Database, name: str, pid: int, queues: Mapping[str, int], done: Mapping[str, int]
) -> None:
    """Our worker counts now, with the requests in ``done`` (handled) taken out of the
    request — unless it was changed meanwhile to ask something else."""
    dialect = dialect_for(db)
    with dialect.write_transaction(db):
        request = read_scale_request(db, name)
        for queue, count in done.items():
            if request.get(queue) == count:
                del request[queue]
        db.execute_sql(dialect.sql(_APPLIED), {
            "name": name, "pid": pid, "queues": dumps(dict(queues)),
            "request": dumps(request) if request else None})  # fmt: skip
