"""Console benchmark: the jobtui console on a job table of a million rows.

    python -m bench.console [--jobs 1000000] [--path /tmp/jobtui-bench-console.db] [--json]

Measures, on SQLite:

- time to the first useful screen: in-process (open the database, build the app, first
  poll rendered in the jobs table) and cold (``python -m jobtui.tui`` in a tmux terminal
  until the table is on screen; skipped without tmux);
- each refresh tick's queries, per view and per filter (median and p95 of repeated
  ticks; aggregates — queue counts, the last hour, failure groups — are cached for 5 s,
  so the "aggregates refreshed" row is the tick that refreshes them, every few seconds;
  the Metrics view re-reads its last hour every 5 s, 24 hours and 7 days every 30/60 s);
- scrolling to any page: keyset windows at random places, the last page, a page back;
- memory: the console's resident set after the first screen and after 30 polls (the
  database is generated in a child process, so its memory is not counted).

The database is generated once (``bench/console_data.py``) and reused when it exists with
the requested size.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import random
import shutil
import sqlite3
import statistics
import subprocess
import sys
import time
from datetime import datetime, timedelta

import psutil

from jobtui.lean_import import load_peewee_for

# Peewee as the `jobtui` command loads it on SQLite, without the PostgreSQL drivers: the
# in-process memory figures are then the console's as users run it, whatever is installed
# (with the test extra's psycopg 2 and 3 imported, ~10 MB more).
load_peewee_for("sqlite://")

from bench.console_data import populate  # noqa: E402 - after Peewee's lean import
from jobtui.models import store  # noqa: E402
from jobtui.models.clock import utcnow  # noqa: E402

TARGETS = {"first_screen_s": 1.0, "tick_ms": 50.0, "rss_mb": 150.0}
FILTERS = ("state:failed", "state:failed,cancelled", "state:pending", "queue:emails",
           "task:jobtui.demo.cleanup", "task:*email*", "pri:>5", "age:>10d", "!state:completed",
           "queue:emails state:failed", "queue:emails state:pending", "timed out")  # fmt: skip


def ensure_database(path: str, jobs: int) -> tuple[str, float | None]:
    """The benchmark database (generated if missing or of another size); build seconds."""
    if os.path.exists(path):
        conn = sqlite3.connect(path)
        try:
            (count,) = conn.execute("SELECT COUNT(*) FROM jobs").fetchone()
            conn.execute("SELECT 1 FROM job_rollup LIMIT 1").fetchall()  # made with its rollup
        except sqlite3.Error:
            count = -1
        conn.close()
        if count == jobs:
            return f"sqlite:///{path}", None
    started = time.perf_counter()
    # in a child process: the generation's memory would otherwise stay in this process's
    # resident set, which the memory figures read as the console's
    child = multiprocessing.get_context("fork").Process(target=populate, args=(path, jobs),
                                                        kwargs={"now": utcnow()})  # fmt: skip
    child.start()
    child.join()
    if child.exitcode != 0:
        raise SystemExit(f"generating {path} failed (exit {child.exitcode})")
    return f"sqlite:///{path}", time.perf_counter() - started


def timings(fn, repeat: int) -> dict[str, float]:
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    return {"median_ms": round(statistics.median(samples), 2),
            "p95_ms": round(samples[min(len(samples) - 1, int(len(samples) * 0.95))], 2),
            "max_ms": round(samples[-1], 2)}  # fmt: skip


def first_screen_in_process(url: str) -> dict[str, float]:
    """Open, build, mount, first poll rendered; then 30 more polls; RSS at both points."""
    from jobtui.tui.launch import build_app

    process = psutil.Process()
    result: dict[str, float] = {}

    async def run() -> None:
        started = time.perf_counter()
        app = build_app(url, refresh_interval=None)
        async with app.run_test(size=(120, 40)) as pilot:
            table = app.screen.query_one("#jobs-table")
            while table.row_count == 0:
                await pilot.pause(0.001)
            result["first_screen_s"] = round(time.perf_counter() - started, 3)
            result["rss_first_screen_mb"] = round(process.memory_info().rss / 2**20, 1)
            for _ in range(30):
                polls = app.polls
                app.request_poll()
                while app.polls == polls:
                    await pilot.pause(0.001)
            result["rss_after_30_polls_mb"] = round(process.memory_info().rss / 2**20, 1)

    asyncio.run(run())
    return result


def first_screen_cold(url: str) -> float | None:
    """``python -m jobtui.tui`` in tmux until the jobs table shows its rows (seconds)."""
    if shutil.which("tmux") is None:
        return None
    socket = f"jobtui-bench-{os.getpid()}"
    env = {**os.environ, "LANG": "C.UTF-8"}
    env.pop("TMUX", None)
    command = f"{sys.executable} -m jobtui.tui --database {url}"
    started = time.perf_counter()
    subprocess.run(["tmux", "-L", socket, "new-session", "-d", "-x", "120", "-y", "40", command],
                   env=env, check=True)  # fmt: skip
    try:
        deadline = started + 30
        while time.perf_counter() < deadline:
            screen = subprocess.run(["tmux", "-L", socket, "capture-pane", "-p"],
                                    capture_output=True, text=True).stdout  # fmt: skip
            if "200 rows" in screen:
                return round(time.perf_counter() - started, 3)
            time.sleep(0.01)
        return None
    finally:
        subprocess.run(["tmux", "-L", socket, "kill-server"], capture_output=True)


def query_ticks(url: str, repeat: int) -> dict[str, dict[str, float]]:
    from jobtui.tui.filters import parse_filter
    from jobtui.tui.snapshot import JobsQuery
    from jobtui.tui.source import DataSource

    db = store.use_database(url)
    source = DataSource(db, url=url)
    out: dict[str, dict[str, float]] = {}
    query = JobsQuery()

    def fresh_jobs() -> None:
        source.invalidate()
        source.jobs_view(query)

    out["jobs view, aggregates refreshed (every 5 s)"] = timings(fresh_jobs, max(3, repeat // 4))
    source.jobs_view(query)
    out["jobs view tick"] = timings(lambda: source.jobs_view(query), repeat)
    out["header (workers alive/stale)"] = timings(source.header, repeat)
    for name in ("queues_view", "workers_view", "failures_view", "scheduled_view",
                 "metrics_view"):  # fmt: skip
        fn = getattr(source, name)
        fn()
        out[f"{name.replace('_view', '')} view tick"] = timings(fn, repeat)

    def fresh_hour() -> None:
        source._cache.pop("metrics:1h", None)  # noqa: SLF001 - the refresh every 5 s
        source.metrics_view()

    def fresh_metrics() -> None:
        source.invalidate()
        source.metrics_view()

    out["metrics view, last hour refreshed (every 5 s)"] = timings(fresh_hour, repeat)
    out["metrics view, 1h+24h+7d refreshed (every 60 s)"] = timings(fresh_metrics, repeat)
    for text in FILTERS:
        filtered = JobsQuery(filter=parse_filter(text))
        source.jobs_view(filtered, with_panes=False)  # counts and plans cached, as live
        out[f"jobs filter {text!r} tick"] = timings(
            lambda f=filtered: source.jobs_view(f, with_panes=False), repeat
        )
    return out


def scrolling(url: str, repeat: int) -> dict[str, dict[str, float]]:
    from jobtui.tui.snapshot import JobsQuery
    from jobtui.tui.source import DataSource
    from jobtui.tui.stats import id_floor

    db = store.use_database(url)
    source = DataSource(db, url=url)
    (first,) = db.execute_sql("SELECT MIN(created_at) FROM jobs").fetchone()
    first = datetime.fromisoformat(str(first))
    span = (utcnow() - first).total_seconds()
    rng = random.Random(1)

    def random_page() -> None:
        moment = first + timedelta(seconds=rng.uniform(0, span))
        source.jobs_view(JobsQuery(top=id_floor(moment)), with_panes=False)

    query = JobsQuery()
    out = {"page at a random place (keyset)": timings(random_page, repeat)}

    def last_page() -> None:
        top = source.last_page_top(query)
        source.jobs_view(JobsQuery(top=top), with_panes=False)

    out["last page (G)"] = timings(last_page, repeat)
    middle = id_floor(first + timedelta(seconds=span / 2))
    out["page back up (rows_before)"] = timings(
        lambda: source.rows_before(JobsQuery(top=middle), 100), repeat
    )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.console", description=__doc__.split(
        "\n\n")[0])  # fmt: skip
    parser.add_argument("--jobs", type=int, default=1_000_000)
    parser.add_argument("--path", default=os.path.join(os.environ.get("TMPDIR", "/tmp"),
                                                       "jobtui-bench-console.db"))  # fmt: skip
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    url, built = ensure_database(args.path, args.jobs)
    store.reset()
    report: dict = {"jobs": args.jobs, "database_mb": round(os.path.getsize(args.path) / 2**20),
                    "generated_in_s": None if built is None else round(built, 1)}  # fmt: skip
    report["first_screen_cold_s"] = first_screen_cold(url)
    store.reset()
    report.update(first_screen_in_process(url))
    store.reset()
    report["ticks"] = query_ticks(url, args.repeat)
    report["scrolling"] = scrolling(url, args.repeat)
    store.reset()
    worst_tick = max(v["p95_ms"] for k, v in report["ticks"].items() if "refresh" not in k
                     and "'timed out'" not in k)  # fmt: skip
    report["checks"] = {
        "first screen < 1 s": report["first_screen_s"] < TARGETS["first_screen_s"],
        "ticks (p95, index-backed filters) < 50 ms": worst_tick < TARGETS["tick_ms"],
        "rss < 150 MB": report["rss_after_30_polls_mb"] < TARGETS["rss_mb"],
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"jobtui console on {args.jobs:,} jobs ({report['database_mb']} MB SQLite)")
    if built is not None:
        print(f"  generated in {built:.1f} s")
    print(
        f"  first useful screen: {report['first_screen_s']:.3f} s in process; "
        f"{report['first_screen_cold_s']} s cold from the shell (tmux)"
    )
    print(
        f"  memory: {report['rss_first_screen_mb']} MB at first screen, "
        f"{report['rss_after_30_polls_mb']} MB after 30 polls"
    )
    for section in ("ticks", "scrolling"):
        print(f"  {section}:  {'median':>8} {'p95':>8} {'max':>8}  (ms)")
        for name, t in report[section].items():
            print(f"    {name:<52} {t['median_ms']:8.2f} {t['p95_ms']:8.2f} {t['max_ms']:8.2f}")
    for check, ok in report["checks"].items():
        print(f"  {'ok  ' if ok else 'MISS'} {check}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
