"""Prometheus metrics of one supervisor (``--metrics-port``), served off the dispatch loop.

Loaded only when asked for: without ``--metrics-port`` this module and prometheus_client
are never imported (the daemon's memory is shared by its workers). With it, the loop bumps
counters and observes histograms as jobs start and end (a dict look-up and a locked add
each), and an HTTP thread of prometheus_client serves the registry. That thread never
touches the database nor the loop's state: worker gauges are copied into the registry by
the loop once a second, and the database's queue depth and latency are read by the loop
(one grouped query) every ``DB_REFRESH_S`` while someone scrapes, never when nobody does.

Forking with a thread alive is safe only if the child never needs a lock that thread
held (RELIABILITY.md, fact 3): the thread holds ``fork_lock`` for the whole of a request,
and the loop takes it around every fork, so a fork never happens mid-scrape; the workers
never touch prometheus_client or the server's socket.

Every metric carries a ``supervisor`` label (this supervisor's name): counters sum across
supervisors (``sum by (queue)``), and the queue depth and latency, which every supervisor
reads from the same database, are the same figure on each, so a dashboard takes
``max by (queue)``. Queue and task labels are bounded names, shown through
``visible_line`` (control characters made visible) exactly as ``jobtui metrics`` shows
them; job ids are never labels.
"""

from __future__ import annotations

import logging
import threading
import time
from bisect import bisect_left
from datetime import UTC, datetime

import peewee

from jobtui.models.base import as_datetime
from jobtui.models.clock import utcnow
from jobtui.models.errors import ConfigurationError
from jobtui.models.ready_reads import READY_PARTS
from jobtui.models.visible import visible_line

log = logging.getLogger(__name__)

#: Wait and run time buckets (seconds) unless --metrics-buckets gives others.
DEFAULT_BUCKETS = (0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0, 3600.0)
GAUGE_REFRESH_S = 1.0  # worker gauges and the longest loop turn, copied this often
DB_REFRESH_S = 5.0  # queue depth and latency, read this often while scraped
SCRAPED_RECENTLY_S = 120.0  # no scrape for this long: the database is left alone

COUNTERS = (
    ("started", "Runs begun by this supervisor's workers (each attempt counts once)"),
    ("completed", "Jobs that completed"),
    ("failed", "Jobs that failed for good (no retry left, or not retryable)"),
    ("retried", "Failed runs that will be retried"),
    ("cancelled", "Running or prefetched jobs that ended cancelled"),
    ("timed_out", "Runs stopped by their timeout (then retried or failed)"),
    ("crashed", "Runs whose worker died under them (then retried or failed)"),
)
#: The outcome status the commit reports -> counter (None: lease lost, not counted).
STATUS_COUNTER = {"completed": "completed", "failed": "failed", "retrying": "retried",
                  "cancelled": "cancelled"}  # fmt: skip
ATTEMPT_COUNTER = {"timed_out": "timed_out", "crashed": "crashed"}

_DUE_NOW = """SELECT queue_name, COUNT(*), MIN(CASE WHEN next_retry_at IS NOT NULL
    AND next_retry_at > run_at THEN next_retry_at ELSE run_at END) FROM jobs
    WHERE {half} AND run_at <= :now
    AND (next_retry_at IS NULL OR next_retry_at <= :now) GROUP BY queue_name"""


def parse_buckets(text: str) -> tuple[float, ...]:
    """``0.01,0.1,1,10``: increasing positive upper bounds, in seconds (+Inf is added)."""
    try:
        bounds = tuple(float(part) for part in text.replace(" ", "").split(",") if part)
    except ValueError:
        raise ValueError(f"{text!r}: comma-separated seconds, e.g. 0.01,0.1,1,10") from None
    if not bounds:
        raise ValueError(f"{text!r}: at least one bucket bound")
    if any(b <= 0 or b != b or b == float("inf") for b in bounds):
        raise ValueError(f"{text!r}: bounds must be positive finite seconds")
    if any(later <= earlier for earlier, later in zip(bounds, bounds[1:], strict=False)):
        raise ValueError(f"{text!r}: bounds must increase")
    return bounds


def load_client():
    """prometheus_client, or a one-line configuration error naming the extra."""
    try:
        import prometheus_client
    except ImportError:
        raise ConfigurationError(
            "--metrics-port needs prometheus_client: pip install 'jobtui[metrics]'"
        ) from None
    return prometheus_client


def due_now_by_queue(db: peewee.Database, now: datetime) -> dict[str, tuple[int, float]]:
    """Per queue: jobs due now and waiting (pending or retrying), and how long the oldest
    of them has waited (seconds) — the queue's depth and latency, a grouped query per claim
    index."""
    from jobtui.models.clock import sql_timestamp

    stamp = sql_timestamp(now)
    out: dict[str, tuple[int, float]] = {}
    for half in READY_PARTS:  # each claim index's due jobs (models/ready_reads.py)
        sql = _DUE_NOW.format(half=half).replace(":now", db.param)
        for queue, count, first in db.execute_sql(sql, (stamp, stamp)).fetchall():
            first = as_datetime(first)
            latency = max(0.0, (now - first).total_seconds()) if first is not None else 0.0
            before_count, before_latency = out.get(queue, (0, 0.0))
            out[queue] = (before_count + int(count), max(before_latency, latency))
    return out


#: A series' vector: the counters in COUNTERS order, the wait and run sums, then the wait
#: and run bucket counts (one per bound, then +Inf; not cumulative).
_SUMS = len(COUNTERS)
_INDEX = {kind: i for i, (kind, _) in enumerate(COUNTERS)}
_EPOCH = datetime(1970, 1, 1)


class SupervisorMetrics:
    """One supervisor's figures and the cheap calls the loop makes into them.

    The loop keeps plain tallies (a list of numbers per queue and task: an add and a
    bisect per event, no lock, no clock read beyond one ``time.time()``); prometheus_client
    reads them through a collector when scraped. Copying a list or a dict's items is one
    C call under the GIL, so the server thread sees each series whole."""

    def __init__(self, name: str, buckets: tuple[float, ...] = DEFAULT_BUCKETS) -> None:
        client = load_client()
        client.disable_created_metrics()  # no *_created series: half the lines, no use here
        self.client = client
        self.name = name
        self.bounds = tuple(buckets)
        self.series: dict[tuple[str, str], list[float]] = {}
        self._wait0 = _SUMS + 2
        self._run0 = self._wait0 + len(self.bounds) + 1
        self.registry = client.CollectorRegistry(auto_describe=False)
        self.registry.register(_Tallies(self))
        sup = ("supervisor",)
        gauge = client.Gauge
        self.busy = gauge("jobtui_workers_busy", "Workers running a job", sup,
                          registry=self.registry).labels(name)  # fmt: skip
        self.idle = gauge("jobtui_workers_idle", "Workers waiting for a job", sup,
                          registry=self.registry).labels(name)  # fmt: skip
        self.prefetched = gauge("jobtui_jobs_prefetched", "Jobs claimed by this supervisor, "
                                "not begun yet", sup, registry=self.registry).labels(name)  # fmt: skip
        self.turn = gauge("jobtui_loop_turn_seconds", "The longest dispatch-loop turn in the "
                          "last second", sup, registry=self.registry).labels(name)  # fmt: skip
        queue_labels = ("queue", "supervisor")
        self.depth = gauge("jobtui_queue_depth", "Jobs due and waiting in the queue (the "
                           "database's figure: take max by queue)", queue_labels,
                           registry=self.registry)  # fmt: skip
        self.latency = gauge("jobtui_queue_latency_seconds", "How long the queue's oldest "
                             "due job has waited (take max by queue)", queue_labels,
                             registry=self.registry)  # fmt: skip
        self.fork_lock = threading.Lock()
        self.last_scrape = 0.0  # monotonic; written by the server thread
        self.longest_turn = 0.0
        self.next_gauges = 0.0
        self.next_db = 0.0
        self.queues_seen: set[str] = set()
        self.server = None

    # ---------------------------------------------------------------- served

    def serve(self, port: int, host: str = "") -> None:
        """Listen on ``port`` in a daemon thread; a port in use is a configuration error."""
        from http.server import ThreadingHTTPServer
        from wsgiref.simple_server import make_server

        app = self.client.make_wsgi_app(self.registry)
        metrics = self

        def guarded(environ, start_response):
            with metrics.fork_lock:  # no fork happens while a scrape runs (module doc)
                metrics.last_scrape = time.monotonic()
                return list(app(environ, start_response))

        from wsgiref.simple_server import WSGIRequestHandler, WSGIServer

        class Quiet(WSGIRequestHandler):
            def log_message(self, format, *args):  # noqa: A002 - the base's signature
                pass

        class Server(ThreadingHTTPServer, WSGIServer):
            daemon_threads = True

        try:
            self.server = make_server(host, port, guarded, Server, handler_class=Quiet)
        except OSError as exc:
            raise ConfigurationError(f"--metrics-port {port}: {exc.strerror or exc}") from None
        thread = threading.Thread(target=self.server.serve_forever, name="jobtui-metrics",
                                  daemon=True)  # fmt: skip
        thread.start()
        log.info("metrics on http://%s:%d/metrics", host or "0.0.0.0", port)

    def close(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def close_in_child(self) -> None:
        """A forked worker drops the listening socket (never serves, never closes it
        under the parent: only its own descriptor)."""
        if self.server is not None:
            try:
                self.server.socket.close()
            except OSError:
                pass

    # ---------------------------------------------------------------- bumped by the loop

    def _vector(self, queue: str, task: str) -> list[float]:
        vector = self.series.get((queue, task))
        if vector is None:
            vector = self.series[(queue, task)] = [0] * (self._run0 + len(self.bounds) + 1)
        return vector

    def started(self, queue: str, task: str, run_at) -> None:
        """A run began now; ``run_at``: when it was due (its wait is observed)."""
        vector = self.series.get((queue, task)) or self._vector(queue, task)
        vector[0] += 1
        due = self._epoch(run_at)
        if due is None:
            return
        wait = time.time() - due
        wait = wait if wait > 0.0 else 0.0
        vector[_SUMS] += wait
        vector[self._wait0 + bisect_left(self.bounds, wait)] += 1

    @staticmethod
    def _epoch(moment) -> float | None:
        """Seconds since the epoch of a stored UTC timestamp (SQLite: text)."""
        if type(moment) is str:
            try:
                return (datetime.fromisoformat(moment) - _EPOCH).total_seconds()
            except ValueError:
                pass
        moment = as_datetime(moment)
        if moment is None:
            return None
        if moment.tzinfo is not None:
            moment = moment.astimezone(UTC).replace(tzinfo=None)
        return (moment - _EPOCH).total_seconds()

    def ended(self, queue: str | None, task: str | None, status: str | None,
              attempt_outcome: str | None, ran_s: float | None) -> None:  # fmt: skip
        """A run's outcome as the commit wrote it (``status`` None: its lease was lost)."""
        if status is None or queue is None or task is None:
            return
        counter = STATUS_COUNTER.get(status)
        if counter is None:
            return  # put back (interrupted): not an end
        vector = self.series.get((queue, task)) or self._vector(queue, task)
        vector[_INDEX[counter]] += 1
        counter = ATTEMPT_COUNTER.get(attempt_outcome or "")
        if counter is not None:
            vector[_INDEX[counter]] += 1
        if ran_s is not None:
            vector[_SUMS + 1] += ran_s
            vector[self._run0 + bisect_left(self.bounds, ran_s)] += 1

    def families(self) -> list:
        """The tallies as metric families (called by the server thread when scraped)."""
        from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily
        from prometheus_client.utils import floatToGoString

        labels = ["queue", "task", "supervisor"]
        counters = [CounterMetricFamily(f"jobtui_jobs_{kind}", text, labels=labels)
                    for kind, text in COUNTERS]  # fmt: skip
        wait = HistogramMetricFamily("jobtui_job_wait_seconds", "Time from a run's due time "
                                     "to its start", labels=labels)  # fmt: skip
        run = HistogramMetricFamily("jobtui_job_run_seconds", "Time from a run's start to "
                                    "its end", labels=labels)  # fmt: skip
        les = [*(floatToGoString(b) for b in self.bounds), "+Inf"]
        width = len(les)
        for (queue, task), vector in list(self.series.items()):
            vector = list(vector)
            key = [visible_line(queue), visible_line(task), self.name]
            for index, family in enumerate(counters):
                family.add_metric(key, vector[index])
            for family, first, total in ((wait, self._wait0, vector[_SUMS]),
                                         (run, self._run0, vector[_SUMS + 1])):  # fmt: skip
                buckets, seen = [], 0
                for le, count in zip(les, vector[first : first + width], strict=True):
                    seen += count
                    buckets.append((le, seen))
                family.add_metric(key, buckets, total)
        return [*counters, wait, run]

    def turn_took(self, seconds: float, now: float, supervisor) -> None:
        """After each loop turn: keep the longest; once a second copy the worker gauges
        (and, while scraped, the queue figures every DB_REFRESH_S)."""
        if seconds > self.longest_turn:
            self.longest_turn = seconds
        if now < self.next_gauges:
            return
        self.next_gauges = now + GAUGE_REFRESH_S
        self.turn.set(self.longest_turn)
        self.longest_turn = 0.0
        busy = prefetched = 0
        for worker in supervisor.workers.values():
            if worker.jobs:
                busy += 1
                prefetched += sum(1 for job in worker.jobs if job.started_mono is None)
        self.busy.set(busy)
        self.idle.set(len(supervisor.workers) - busy)
        self.prefetched.set(prefetched + len(supervisor.ready))
        if now >= self.next_db and now - self.last_scrape < SCRAPED_RECENTLY_S:
            self.next_db = now + DB_REFRESH_S
            self.refresh_queues(supervisor.db, supervisor.config.served_queues or ())

    def refresh_queues(self, db: peewee.Database, served: tuple[str, ...] = ()) -> None:
        """Depth and latency of every queue with due jobs, and 0 for the queues this
        supervisor serves or has run jobs of: an idle queue reads 0, not "no data" (an
        alert on ``jobtui_queue_depth`` must see the series), nor a stale figure."""
        try:
            figures = due_now_by_queue(db, utcnow())
        except peewee.PeeweeException as exc:
            log.debug("queue figures not read: %s", exc)
            return
        known = self.queues_seen | set(served) | {queue for queue, _ in list(self.series)}
        for queue in known - figures.keys():
            figures[queue] = (0, 0.0)
        for queue, (depth, latency) in figures.items():
            self.queues_seen.add(queue)
            label = visible_line(queue)
            self.depth.labels(label, self.name).set(depth)
            self.latency.labels(label, self.name).set(latency)


class _Tallies:
    """The registry's view of the loop's tallies."""

    def __init__(self, metrics: SupervisorMetrics) -> None:
        self.metrics = metrics

    def collect(self):
        return self.metrics.families()
