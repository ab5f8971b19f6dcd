"""``jobtui metrics``: the Prometheus exposition of the database alone, printed once.

For a cron job or node-exporter's textfile collector (``jobtui metrics >
/var/lib/node_exporter/jobtui.prom.$$ && mv ...``) where no supervisor's
``--metrics-port`` can be scraped. Same metric names as a supervisor's endpoint, without
its ``supervisor`` label and its per-process gauges (workers, prefetch, loop turn):

- the job counters by queue and task are totals over the rollup (``job_rollup``, kept 8
  days: models/rollup.py) — completed, failed, retried, cancelled; started is every run
  that ended (the rollup's run histogram) plus the jobs running now; timed out and crashed
  are counted in the attempts table (kept with their jobs, ``--retention-days``). A
  counter falls when old rows are pruned; Prometheus reads that as a reset.
- the wait and run histograms are the rollup's own, on its grid (1 ms · 2^k: every
  other bound of the √2 grid), so they are exact;
- the queue depth and latency gauges as a supervisor reads them.

Built with prometheus_client (``jobtui[metrics]``), which escapes label values; queue and
task names are shown through ``visible_line`` as on the endpoint.
"""

from __future__ import annotations

import argparse
import sys

from jobtui.models.clock import utcnow
from jobtui.models.errors import ConfigurationError
from jobtui.models.visible import visible_line

#: Histogram bounds of the exposition: every other bound of the rollup's grid.
GRID_STEP = 2

_ROLLUP = """SELECT queue_name, job_type, SUM(completed), SUM(failed), SUM(retried),
    SUM(cancelled), SUM(wait_sum_s), SUM(run_sum_s), {hist} FROM job_rollup
    GROUP BY queue_name, job_type"""
_ATTEMPTS = """SELECT j.queue_name, j.job_type, a.outcome, COUNT(*) FROM job_attempts a
    JOIN jobs j ON j.id = a.job_id WHERE a.outcome IN ('timed_out', 'crashed')
    GROUP BY j.queue_name, j.job_type, a.outcome"""
_RUNNING = """SELECT queue_name, job_type, COUNT(*) FROM jobs
    WHERE status = 'running' AND started_at IS NOT NULL GROUP BY queue_name, job_type"""


def add_metrics_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("metrics", help="print the Prometheus metrics of the database once "
                       "(for cron or a textfile collector)")  # fmt: skip
    p.set_defaults(func=run_metrics_command, opens_database_itself=True)


def _client():
    try:
        import prometheus_client
    except ImportError:
        raise ConfigurationError(
            "jobtui metrics needs prometheus_client: pip install 'jobtui[metrics]'"
        ) from None
    return prometheus_client


def database_families(db) -> list:
    """The metric families of the database (prometheus_client ``Metric`` objects)."""
    from prometheus_client.core import (
        CounterMetricFamily,
        GaugeMetricFamily,
        HistogramMetricFamily,
    )

    from jobtui.models.rollup import BUCKET_BOUNDS_S, HIST_BUCKETS, RUN_COLUMNS, WAIT_COLUMNS
    from jobtui.supervisor.metrics import COUNTERS, due_now_by_queue

    labels = ["queue", "task"]
    counters = {kind: CounterMetricFamily(f"jobtui_jobs_{kind}", text, labels=labels)
                for kind, text in COUNTERS}  # fmt: skip
    wait = HistogramMetricFamily("jobtui_job_wait_seconds", "Time from a run's due time to "
                                 "its start", labels=labels)  # fmt: skip
    run = HistogramMetricFamily("jobtui_job_run_seconds", "Time from a run's start to its "
                                "end", labels=labels)  # fmt: skip
    hist = ", ".join(f"SUM({c})" for c in (*WAIT_COLUMNS, *RUN_COLUMNS))
    started: dict[tuple[str, str], float] = {}
    for queue, task, *values in db.execute_sql(_ROLLUP.format(hist=hist)).fetchall():
        key = (visible_line(queue), visible_line(task))
        done, failed, retried, cancelled, wait_sum, run_sum = (float(v or 0) for v in values[:6])
        for kind, value in (("completed", done), ("failed", failed), ("retried", retried),
                            ("cancelled", cancelled)):  # fmt: skip
            counters[kind].add_metric(list(key), value)
        waits = [int(v or 0) for v in values[6 : 6 + HIST_BUCKETS]]
        runs = [int(v or 0) for v in values[6 + HIST_BUCKETS :]]
        wait.add_metric(list(key), _buckets(waits, BUCKET_BOUNDS_S), wait_sum)
        run.add_metric(list(key), _buckets(runs, BUCKET_BOUNDS_S), run_sum)
        started[key] = started.get(key, 0) + sum(runs)
    for queue, task, count in db.execute_sql(_RUNNING).fetchall():
        key = (visible_line(queue), visible_line(task))
        started[key] = started.get(key, 0) + int(count)
    for key, value in sorted(started.items()):
        counters["started"].add_metric(list(key), value)
    for queue, task, outcome, count in db.execute_sql(_ATTEMPTS).fetchall():
        counters[outcome].add_metric([visible_line(queue), visible_line(task)], int(count))
    depth = GaugeMetricFamily("jobtui_queue_depth", "Jobs due and waiting in the queue",
                              labels=["queue"])  # fmt: skip
    latency = GaugeMetricFamily("jobtui_queue_latency_seconds", "How long the queue's "
                                "oldest due job has waited", labels=["queue"])  # fmt: skip
    figures = {visible_line(queue): value for queue, value in
               due_now_by_queue(db, utcnow()).items()}  # fmt: skip
    for queue, _task in started:  # a queue with runs and nothing due reads 0, not no data
        figures.setdefault(queue, (0, 0.0))
    for queue, (count, late) in sorted(figures.items()):
        depth.add_metric([queue], count)
        latency.add_metric([queue], late)
    return [*counters.values(), wait, run, depth, latency]


def _buckets(counts: list[int], bounds: tuple[float, ...]) -> list[tuple[str, float]]:
    """Cumulative (le, count) pairs on every GRID_STEP-th bound, then +Inf."""
    out, total = [], 0
    for index, count in enumerate(counts):
        total += count
        if index < len(bounds) and index % GRID_STEP == 0:
            out.append((f"{bounds[index]:g}", total))
    out.append(("+Inf", total))
    return out


def exposition(db) -> str:
    """The text exposition format of ``database_families``."""
    client = _client()
    client.disable_created_metrics()

    class Database:
        def collect(self):
            return database_families(db)

    registry = client.CollectorRegistry(auto_describe=False)
    registry.register(Database())
    return client.generate_latest(registry).decode("utf-8")


def run_metrics_command(args: argparse.Namespace) -> int:
    from jobtui.models.store import get_database, use_database

    _client()  # the missing extra is one line, before the database is opened
    use_database(args.database, create=False)
    sys.stdout.write(exposition(get_database()))
    return 0
