"""Supervisor benchmark: jobtui-supervisor against huey's SqliteHuey consumer, in one run.

    python -m bench.supervisor [--jobs N] [--samples N] [--idle-seconds S] [--json]

Both run no-op jobs (each returns the time it started) with 2 process workers on a fresh
SQLite file in WAL mode with synchronous=NORMAL (huey's storage is given NORMAL too).

- throughput: N jobs are enqueued first, then the consumer starts; jobs/s is N over the
  time from the first job's start to the last job's start (startup excluded on both).
  huey polls every 10 ms here (-d 0.01 -m 0.01), its fastest fair setting.
- latency: with the consumer idle, one job at a time: start time minus enqueue time,
  p50/p95 over --samples jobs; then one job after --idle-seconds of idleness. huey runs
  with its default consumer settings here (it backs off while idle).
- idle CPU over 10 s, and memory (RSS of each process, PSS summed over the tree) with the
  consumer idle.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import psutil

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
IDLE_CPU_WINDOW_S = 10.0


@dataclass
class Figures:
    system: str
    throughput: float = 0.0
    latency_p50_ms: float = 0.0
    latency_p95_ms: float = 0.0
    after_idle_ms: float = 0.0
    idle_cpu_percent: float = 0.0
    pss_mb: float = 0.0
    rss_mb: dict[str, float] = field(default_factory=dict)


def _tree(pid: int) -> list[psutil.Process]:
    root = psutil.Process(pid)
    return [root, *root.children(recursive=True)]


def _wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(0.01)


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            for p in _tree(proc.pid):
                p.kill()
            proc.wait()


def _idle_and_memory(proc: subprocess.Popen, figures: Figures) -> None:
    procs = _tree(proc.pid)
    before = sum(sum(p.cpu_times()[:2]) for p in procs)
    time.sleep(IDLE_CPU_WINDOW_S)
    after = sum(sum(p.cpu_times()[:2]) for p in procs)
    figures.idle_cpu_percent = 100 * (after - before) / IDLE_CPU_WINDOW_S
    figures.pss_mb = sum(p.memory_full_info().pss for p in procs) / 1048576
    figures.rss_mb = {f"{'main' if i == 0 else f'child{i}'}": p.memory_info().rss / 1048576
                      for i, p in enumerate(procs)}  # fmt: skip


# --------------------------------------------------------------------------- jobtui


class JobtuiSide:
    def __init__(self, folder: str) -> None:
        self.folder = folder

    def _start(self, url: str) -> subprocess.Popen:
        env = dict(os.environ, JOBTUI_DATABASE=url, PYTHONPATH=ROOT)
        proc = subprocess.Popen(
            [sys.executable, "-m", "jobtui.supervisor.main", "--import", "bench.bench_tasks",
             "--workers", "2", "--log-level", "WARNING"], env=env, cwd=ROOT,
        )  # fmt: skip
        from jobtui.models import Supervisor

        _wait_for(lambda: Supervisor.select().count() > 0, 30, "jobtui supervisor start")
        _wait_for(lambda: len(_tree(proc.pid)) >= 3, 30, "jobtui workers")
        return proc

    def _use(self, name: str) -> str:
        from jobtui.models import store

        url = f"sqlite:///{os.path.join(self.folder, name)}"
        store.reset()
        store.use_database(url)
        return url

    def throughput(self, jobs: int, fair_keys: int = 0) -> float:
        """``fair_keys``: the jobs are spread over that many fair keys (fairness.py), so
        every claim takes the fair path."""
        import jobtui
        from jobtui.models import Job

        url = self._use("throughput.db")
        for start in range(0, jobs, 1000):
            items = [{"fair_key": f"k{n % fair_keys}"} if fair_keys else {}
                     for n in range(start, min(start + 1000, jobs))]  # fmt: skip
            jobtui.enqueue_many("bench.stamp", items)
        proc = self._start(url)
        try:
            _wait_for(lambda: Job.select().where(Job.status == "completed").count() == jobs,
                      600, "jobtui drain")  # fmt: skip
        finally:
            _stop(proc)
        starts = [job.result for job in Job.select(Job.result)]
        return jobs / (max(starts) - min(starts))

    def latency(self, figures: Figures, samples: int, idle_s: float) -> None:
        import jobtui

        url = self._use("latency.db")
        proc = self._start(url)
        try:

            def one() -> float:
                sent = time.time()
                job = jobtui.enqueue("bench.stamp")
                return 1000 * (jobtui.wait(job.id, timeout=30) - sent)

            for _ in range(5):
                one()  # warm up
            values = [one() for _ in range(samples)]
            figures.latency_p50_ms = statistics.median(values)
            figures.latency_p95_ms = statistics.quantiles(values, n=20)[18]
            _idle_and_memory(proc, figures)
            time.sleep(max(0.0, idle_s - IDLE_CPU_WINDOW_S))
            figures.after_idle_ms = one()
        finally:
            _stop(proc)


# --------------------------------------------------------------------------- huey


class HueySide:
    def __init__(self, folder: str) -> None:
        self.folder = folder

    def _app(self, name: str):
        os.environ["BENCH_HUEY_DB"] = os.path.join(self.folder, name)
        for module in [m for m in sys.modules if m.startswith("bench.huey_app")]:
            del sys.modules[module]
        import bench.huey_app as app

        return app

    def _start(self, extra: list[str]) -> subprocess.Popen:
        env = dict(os.environ, PYTHONPATH=ROOT)
        proc = subprocess.Popen(
            [sys.executable, "-m", "huey.bin.huey_consumer", "bench.huey_app.huey", "-w", "2",
             "-k", "process", "-q", "-n", *extra],
            env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        _wait_for(lambda: len(_tree(proc.pid)) >= 3, 30, "huey workers")
        return proc

    def throughput(self, jobs: int) -> float:
        app = self._app("throughput.db")
        results = [app.stamp() for _ in range(jobs)]
        proc = self._start(["-d", "0.01", "-m", "0.01", "-b", "1.0"])
        try:
            _wait_for(lambda: app.huey.result_count() >= jobs, 600, "huey drain")
        finally:
            _stop(proc)
        starts = [r.get(preserve=True) for r in results]
        return jobs / (max(starts) - min(starts))

    def latency(self, figures: Figures, samples: int, idle_s: float) -> None:
        app = self._app("latency.db")
        proc = self._start([])  # huey's default consumer settings
        try:

            def one() -> float:
                sent = time.time()
                result = app.stamp()
                return 1000 * (result.get(blocking=True, timeout=60) - sent)

            for _ in range(5):
                one()
            values = [one() for _ in range(samples)]
            figures.latency_p50_ms = statistics.median(values)
            figures.latency_p95_ms = statistics.quantiles(values, n=20)[18]
            _idle_and_memory(proc, figures)
            time.sleep(max(0.0, idle_s - IDLE_CPU_WINDOW_S))
            figures.after_idle_ms = one()
        finally:
            _stop(proc)


# --------------------------------------------------------------------------- main


def run(jobs: int, samples: int, idle_s: float, fair_keys: int = 0) -> dict:
    out = {}
    with tempfile.TemporaryDirectory(prefix="jobtui-bench-") as folder:
        for name, side in (("jobtui", JobtuiSide(folder)), ("huey", HueySide(folder))):
            figures = Figures(system=name)
            figures.throughput = (side.throughput(jobs, fair_keys) if name == "jobtui"
                                  else side.throughput(jobs))  # fmt: skip
            side.latency(figures, samples, idle_s)
            out[name] = figures
    return out


def report(out: dict[str, Figures]) -> list[tuple[str, str, str, str, str, str]]:
    j, h = out["jobtui"], out["huey"]
    rows = [
        ("throughput (jobs/s)", f"{j.throughput:,.0f}", f"{h.throughput:,.0f}",
         f"{j.throughput / h.throughput:.2f}x", ">= 2x", j.throughput >= 2 * h.throughput),
        ("latency p50 (ms)", f"{j.latency_p50_ms:.2f}", f"{h.latency_p50_ms:.2f}",
         f"{j.latency_p50_ms / h.latency_p50_ms:.2f}x", "<= 0.25x",
         j.latency_p50_ms <= h.latency_p50_ms / 4),
        ("latency p95 (ms)", f"{j.latency_p95_ms:.2f}", f"{h.latency_p95_ms:.2f}",
         f"{j.latency_p95_ms / h.latency_p95_ms:.2f}x", "", None),
        ("first job after idle (ms)", f"{j.after_idle_ms:.2f}", f"{h.after_idle_ms:.2f}",
         f"{j.after_idle_ms / h.after_idle_ms:.2f}x", "<= 0.25x",
         j.after_idle_ms <= h.after_idle_ms / 4),
        ("idle CPU (%)", f"{j.idle_cpu_percent:.2f}", f"{h.idle_cpu_percent:.2f}", "", "< 1%",
         j.idle_cpu_percent < 1),
        ("PSS, all processes (MB)", f"{j.pss_mb:.1f}", f"{h.pss_mb:.1f}",
         f"{j.pss_mb / h.pss_mb:.2f}x", "<= 1x", j.pss_mb <= h.pss_mb),
        ("RSS per process (MB)", " ".join(f"{v:.0f}" for v in j.rss_mb.values()),
         " ".join(f"{v:.0f}" for v in h.rss_mb.values()), "", "", None),
    ]  # fmt: skip
    return [
        (a, b, c, d, e, "" if f is None else ("PASS" if f else "FAIL")) for a, b, c, d, e, f in rows
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--idle-seconds", type=float, default=60.0)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--fair-keys", type=int, default=0, metavar="K",
                        help="jobtui's jobs spread over K fair keys (the fair claim)")  # fmt: skip
    args = parser.parse_args()
    out = run(args.jobs, args.samples, args.idle_seconds, args.fair_keys)
    if args.json:
        print(json.dumps({k: asdict(v) for k, v in out.items()}, indent=2))
        return
    print(f"{'':<27}{'jobtui':>12}{'huey':>12}{'ratio':>9}{'target':>10}  result")
    for name, mine, theirs, ratio, target, verdict in report(out):
        print(f"{name:<27}{mine:>12}{theirs:>12}{ratio:>9}{target:>10}  {verdict}")


if __name__ == "__main__":
    main()
