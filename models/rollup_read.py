"""Reading the rollup (rollup.py): exact counts, rates and percentiles over the last hour,
24 hours or 7 days, per queue and task, with a per-slot series for sparklines.

Each read sums at most (slots × queues × tasks) rollup rows in SQL, whatever the size of
the job table: the console, ``jobtui status`` and ``queue_stats()`` all read it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import peewee

from .base import as_datetime
from .clock import sql_timestamp
from .rollup import (
    COUNTS,
    HIST_BUCKETS,
    RUN_COLUMNS,
    VALUE_COLUMNS,
    WAIT_COLUMNS,
    histogram_percentile,
)

_W0 = len(COUNTS) + 2
_R0 = _W0 + HIST_BUCKETS


@dataclass(frozen=True)
class Window:
    """A period ending now, cut into ``slot_s`` slots for its sparkline."""

    label: str
    seconds: int
    slot_s: int

    @property
    def slots(self) -> int:
        return self.seconds // self.slot_s

    def start(self, now: datetime) -> datetime:
        """The first slot's start: slots are aligned to the minute (or the hour), the last
        one holds ``now``."""
        if self.slot_s < 3600:
            head = now.replace(second=0, microsecond=0)
            head -= timedelta(seconds=(head.minute * 60) % self.slot_s)
        else:
            head = now.replace(minute=0, second=0, microsecond=0)
            head -= timedelta(hours=head.hour % (self.slot_s // 3600))
        return head - timedelta(seconds=self.slot_s * (self.slots - 1))


HOUR = Window("1h", 3600, 60)
DAY = Window("24h", 86400, 3600)
WEEK = Window("7d", 7 * 86400, 4 * 3600)
WINDOWS = (HOUR, DAY, WEEK)


@dataclass(frozen=True)
class Figures:
    """Ends of one queue (task "" for all its tasks; queue "" for every queue) in a window."""

    queue: str
    task: str
    values: tuple[float, ...]  # VALUE_COLUMNS order
    done_series: tuple[int, ...] = ()
    failed_series: tuple[int, ...] = ()
    window_s: float = 3600.0

    def _count(self, name: str) -> int:
        return int(self.values[COUNTS.index(name)])

    @property
    def completed(self) -> int:
        return self._count("completed")

    @property
    def failed(self) -> int:
        return self._count("failed")

    @property
    def retried(self) -> int:
        return self._count("retried")

    @property
    def cancelled(self) -> int:
        return self._count("cancelled")

    @property
    def ended(self) -> int:
        """Jobs that reached completed or failed (the rate's numerator)."""
        return self.completed + self.failed

    @property
    def per_min(self) -> float:
        return self.ended / (self.window_s / 60)

    @property
    def wait_hist(self) -> tuple[int, ...]:
        return tuple(int(v) for v in self.values[_W0:_R0])

    @property
    def run_hist(self) -> tuple[int, ...]:
        return tuple(int(v) for v in self.values[_R0:])

    def wait_p(self, fraction: float) -> float | None:
        return histogram_percentile(self.wait_hist, fraction, self.values[4])

    def run_p(self, fraction: float) -> float | None:
        return histogram_percentile(self.run_hist, fraction, self.values[5])

    @property
    def avg_run_s(self) -> float | None:
        runs = sum(self.run_hist)
        return None if runs == 0 else self.values[5] / runs


@dataclass(frozen=True)
class WindowFigures:
    window: Window
    now: datetime
    rows: tuple[Figures, ...]  # per (queue, task), sorted
    queues: tuple[Figures, ...]  # per queue, task ""
    total: Figures = field(default_factory=lambda: Figures("", "", (0,) * len(VALUE_COLUMNS)))

    def queue(self, name: str) -> Figures | None:
        return next((q for q in self.queues if q.queue == name), None)


_SUMS = ", ".join(f"SUM({c})" for c in VALUE_COLUMNS)
_TOTALS = f"""SELECT queue_name, job_type, {_SUMS} FROM job_rollup
WHERE bucket_start >= {{p}}{{minutes}} GROUP BY queue_name, job_type"""
_SERIES = """SELECT bucket_start, queue_name, job_type, SUM(completed), SUM(failed)
FROM job_rollup WHERE bucket_start >= {p}{minutes}
GROUP BY bucket_start, queue_name, job_type"""


def _add(into: list[float], values: Sequence[float]) -> None:
    for index, value in enumerate(values):
        into[index] += value or 0


def read_window(db: peewee.Database, now: datetime, window: Window = HOUR) -> WindowFigures:
    """Exact figures of the jobs that ended in ``window`` before ``now``: per (queue,
    task), per queue and in all, with done and failed per slot."""
    start = window.start(now)
    minutes = " AND span_s = 60" if window.slot_s < 3600 else ""
    params = [sql_timestamp(start)]
    totals: dict[tuple[str, str], list[float]] = {}
    for queue, task, *values in db.execute_sql(
        _TOTALS.format(p=db.param, minutes=minutes), params
    ).fetchall():
        totals[(queue, task)] = [float(v or 0) for v in values]
    series: dict[tuple[str, str], tuple[list[int], list[int]]] = {}
    for bucket, queue, task, done, failed in db.execute_sql(
        _SERIES.format(p=db.param, minutes=minutes), params
    ).fetchall():
        slot = int((as_datetime(bucket) - start).total_seconds() // window.slot_s)
        if not 0 <= slot < window.slots:
            continue
        for key in ((queue, task), (queue, ""), ("", "")):
            pair = series.get(key)
            if pair is None:
                pair = series[key] = ([0] * window.slots, [0] * window.slots)
            pair[0][slot] += int(done or 0)
            pair[1][slot] += int(failed or 0)
    return _assemble(window, now, totals, series)


def _assemble(window: Window, now: datetime, totals: dict[tuple[str, str], list[float]],
              series: dict[tuple[str, str], tuple[list[int], list[int]]]) -> WindowFigures:  # fmt: skip
    width = len(VALUE_COLUMNS)
    per_queue: dict[str, list[float]] = {}
    overall = [0.0] * width
    for (queue, _), values in totals.items():
        _add(per_queue.setdefault(queue, [0.0] * width), values)
        _add(overall, values)

    def figures(queue: str, task: str, values: Iterable[float]) -> Figures:
        done, failed = series.get((queue, task), ((), ()))
        return Figures(queue, task, tuple(values), tuple(done), tuple(failed), window.seconds)

    rows = tuple(figures(q, t, v) for (q, t), v in sorted(totals.items()))
    queues = tuple(figures(q, "", v) for q, v in sorted(per_queue.items()))
    return WindowFigures(window, now, rows, queues, figures("", "", overall))


def queue_hour(db: peewee.Database, now: datetime) -> dict[str, Figures]:
    """The last hour per queue (``queue_stats``, ``jobtui status``)."""
    return {q.queue: q for q in read_window(db, now, HOUR).queues}


__all__ = ["DAY", "HOUR", "RUN_COLUMNS", "WAIT_COLUMNS", "WEEK", "WINDOWS", "Figures",
           "Window", "WindowFigures", "queue_hour", "read_window"]  # fmt: skip
