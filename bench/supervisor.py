"""Supervisor benchmark: jobtui-supervisor against huey's SqliteHuey consumer, in one run.

    python -m bench.supervisor [--jobs N] [--rounds N] [--samples N] [--idle-seconds S] [--json]
    python -m bench.supervisor --metrics-ratio [--rounds N] [--jobs N] [--samples N]
    python -m bench.supervisor --chatty [--jobs N]    # the cost of job logs

Both run no-op jobs with 2 process workers on a fresh SQLite file in WAL mode with
synchronous=NORMAL (huey's storage is given NORMAL too).

- throughput: N jobs are enqueued first, then the consumer starts. Two figures each:
  *wall*, N over the time from launching the daemon to the last job done (what a user
  timing the drain sees: startup included); *steady*, N over the time from the first
  job's start to the last job's start (startup excluded). huey runs both ways: its task
  returning a value (huey stores a result row per job, as jobtui stores every job's row)
  and returning None (huey stores nothing). jobtui's job returns the time it started;
  its last job is done when its completion is committed (``completed_at``); huey's no-op
  ends microseconds after it starts (its start time: the result, or a line its worker
  appends to a file). huey polls every 10 ms here (-d 0.01 -m 0.01), its fastest fair
  setting. The systems alternate, in a rotating order, over --rounds rounds; the figures
  are each system's median.
- latency: with the consumer idle, one job at a time: start time minus enqueue time,
  p50/p95 over --samples jobs; then one job after --idle-seconds of idleness. huey runs
  with its default consumer settings here (it backs off while idle).
- idle CPU over 10 s (the scheduler's clock, every thread of every process: bench/cpu.py),
  and memory (RSS of each process, PSS summed over the tree) with the consumer idle.
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
from datetime import UTC

import peewee
import psutil

from bench.cpu import on_cpu_seconds

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def compile_sources() -> None:
    """Write jobtui's bytecode, as ``pip install`` does for an installed package (and did
    for huey and pgqueuer): an editable checkout run with PYTHONDONTWRITEBYTECODE (set on
    these machines) would otherwise compile every module at each daemon start, ~50-70 ms
    of a drain's wall time that a user's install never pays."""
    import compileall

    for folder in ("jobtui", "models", "supervisor", "bench"):
        compileall.compile_dir(os.path.join(ROOT, folder), quiet=1)


IDLE_CPU_WINDOW_S = 10.0


@dataclass
class Figures:
    system: str
    throughput: float = 0.0  # steady state: first job's start to last job's start
    wall_throughput: float = 0.0  # from launching the daemon to the last job done
    #: (steady, wall, seconds to the first start) of each round
    rounds: list[tuple[float, float, float]] = field(default_factory=list)
    latency_p50_ms: float = 0.0
    latency_p95_ms: float = 0.0
    after_idle_ms: float = 0.0
    idle_cpu_percent: float = 0.0
    pss_mb: float = 0.0
    rss_mb: dict[str, float] = field(default_factory=dict)


def _tree(pid: int) -> list[psutil.Process]:
    root = psutil.Process(pid)
    return [root, *root.children(recursive=True)]


def _wait_for(
    predicate: Callable[[], bool], timeout: float, what: str, interval: float = 0.01
) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(interval)


#: How often a drain is looked at: its end time comes from the data, so a slow look costs
#: no precision, and a frequent one would load the database the workers are draining.
DRAIN_POLL_S = 0.1


@dataclass
class Drain:
    """One drain's figures, jobs/s."""

    steady: float  # first job's start to last job's start
    wall: float  # launching the daemon to the last job done
    startup_s: float = 0.0  # launching the daemon to the first job's start
    jobs: int = 0
    #: CPU seconds of the daemons' processes and of their PostgreSQL backends (bench/cpu.py;
    #: None: not measured, or the server is not on this machine)
    cpu_daemons_s: float | None = None
    cpu_backends_s: float | None = None
    cpu_busiest_backend_s: float | None = None


def drain_figures(jobs: int, launched: float, starts: list[float], last_done: float) -> Drain:
    return Drain(
        steady=jobs / (max(starts) - min(starts)),
        wall=jobs / (last_done - launched),
        startup_s=min(starts) - launched,
        jobs=jobs,
    )


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
    before = on_cpu_seconds(procs)
    time.sleep(IDLE_CPU_WINDOW_S)
    after = on_cpu_seconds(procs)
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

    def throughput(
        self,
        jobs: int,
        name: str = "throughput.db",
        task: str = "bench.stamp",
        fair_keys: int = 0,
    ) -> Drain:
        """``task``: bench.stamp (a no-op), or bench.chatty (a no-op writing 10 lines).
        ``fair_keys``: the jobs are spread over that many fair keys (fairness.py), so
        every claim takes the fair path."""
        import jobtui
        from jobtui.models import Job
        from jobtui.models.base import as_datetime

        url = self._use(name)
        for start in range(0, jobs, 1000):
            items = [{"fair_key": f"k{n % fair_keys}"} if fair_keys else {}
                     for n in range(start, min(start + 1000, jobs))]  # fmt: skip
            jobtui.enqueue_many(task, items)
        launched = time.time()
        proc = self._start(url)
        live = Job.select(Job.id).where(Job.status.in_(["pending", "running", "retrying"]))
        try:  # (a fresh copy each look: a query caches its first result)
            _wait_for(lambda: live.clone().first() is None, 600, "jobtui drain", DRAIN_POLL_S)
            self.cpu_s = sum(psutil.Process(proc.pid).cpu_times()[:2])  # the supervisor alone
        finally:
            _stop(proc)
        assert Job.select().where(Job.status == "completed").count() == jobs
        starts = [job.result for job in Job.select(Job.result)]
        done = as_datetime(Job.select(peewee.fn.MAX(Job.completed_at)).scalar())
        return drain_figures(jobs, launched, starts, done.replace(tzinfo=UTC).timestamp())

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
        env = dict(os.environ, PYTHONPATH=ROOT, BENCH_HUEY_STARTS=self._starts_folder())
        proc = subprocess.Popen(
            [sys.executable, "-m", "huey.bin.huey_consumer", "bench.huey_app.huey", "-w", "2",
             "-k", "process", "-q", "-n", *extra],
            env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        _wait_for(lambda: len(_tree(proc.pid)) >= 3, 30, "huey workers")
        return proc

    def _starts_folder(self) -> str:
        folder = os.path.join(self.folder, "huey-starts")
        os.makedirs(folder, exist_ok=True)
        return folder

    def _logged_starts(self) -> list[float]:
        folder = self._starts_folder()
        starts = []
        for name in os.listdir(folder):
            with open(os.path.join(folder, name)) as lines:
                starts += [float(line) for line in lines if line.endswith("\n")]
        return starts

    def throughput(self, jobs: int, returns_value: bool = True, name: str = "throughput.db") -> Drain:  # fmt: skip
        app = self._app(name)
        for leftover in os.listdir(self._starts_folder()):
            os.unlink(os.path.join(self._starts_folder(), leftover))
        task = app.stamp if returns_value else app.noop
        results = [task() for _ in range(jobs)]
        launched = time.time()
        proc = self._start(["-d", "0.01", "-m", "0.01", "-b", "1.0"])
        try:
            if returns_value:
                _wait_for(lambda: app.huey.result_count() >= jobs, 600, "huey drain",
                          DRAIN_POLL_S)  # fmt: skip
            else:
                _wait_for(lambda: app.huey.pending_count() == 0, 600, "huey drain", DRAIN_POLL_S)
                _wait_for(lambda: len(self._logged_starts()) >= jobs, 60, "huey's last jobs",
                          DRAIN_POLL_S)  # fmt: skip
        finally:
            _stop(proc)
        if returns_value:
            starts = [r.get(preserve=True) for r in results]
        else:
            starts = self._logged_starts()
        assert len(starts) == jobs, (len(starts), jobs)
        return drain_figures(jobs, launched, starts, max(starts))  # a no-op ends as it starts

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


#: The systems drained in each round: jobtui, huey returning a value, huey returning None.
SYSTEMS = ("jobtui", "huey", "huey_none")


def run(
    jobs: int, samples: int, idle_s: float, rounds: int = 3, fair_keys: int = 0
) -> dict[str, Figures]:
    out = {name: Figures(system=name) for name in SYSTEMS}
    with tempfile.TemporaryDirectory(prefix="jobtui-bench-") as folder:
        jobtui_side, huey_side = JobtuiSide(folder), HueySide(folder)
        drains = {
            "jobtui": lambda n: jobtui_side.throughput(
                jobs, f"throughput-{n}.db", fair_keys=fair_keys
            ),
            "huey": lambda n: huey_side.throughput(jobs, True, f"throughput-{n}.db"),
            "huey_none": lambda n: huey_side.throughput(jobs, False, f"throughput-none-{n}.db"),
        }
        for n in range(rounds):  # alternating, each round in another order
            order = SYSTEMS[n % len(SYSTEMS) :] + SYSTEMS[: n % len(SYSTEMS)]
            for name in order:
                drained = drains[name](n)
                out[name].rounds.append((drained.steady, drained.wall, drained.startup_s))
        for figures in out.values():
            figures.throughput = statistics.median(r[0] for r in figures.rounds)
            figures.wall_throughput = statistics.median(r[1] for r in figures.rounds)
        jobtui_side.latency(out["jobtui"], samples, idle_s)
        huey_side.latency(out["huey"], samples, idle_s)
    return out


def metrics_ratio(jobs: int, samples: int, rounds: int) -> list[tuple[str, float, float]]:
    """jobtui alone, with --metrics-port off and on in turn (``rounds`` times each, the
    best of each kept: the machine is shared), scraped every second while on. Returns
    (figure, off, on) for throughput and latency p50/p95."""
    import threading
    import urllib.request

    best: dict[str, dict[str, float]] = {"off": {}, "on": {}}
    with tempfile.TemporaryDirectory(prefix="jobtui-bench-") as folder:
        for round_ in range(rounds):
            for mode in ("off", "on"):
                os.mkdir(os.path.join(folder, f"{mode}{round_}"))
                side = JobtuiSide(os.path.join(folder, f"{mode}{round_}"))  # fresh databases
                stop = threading.Event()
                if mode == "on":
                    import socket

                    with socket.socket() as sock:
                        sock.bind(("127.0.0.1", 0))
                        port = sock.getsockname()[1]
                    os.environ["JOBTUI_METRICS_PORT"] = str(port)

                    def scrape(port: int = port, stop: threading.Event = stop) -> None:
                        while not stop.wait(1.0):
                            try:
                                urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics",
                                                       timeout=2).read()  # fmt: skip
                            except OSError:
                                pass

                    threading.Thread(target=scrape, daemon=True).start()
                try:
                    figures = Figures(system=mode)
                    figures.throughput = side.throughput(jobs).steady
                    side.latency(figures, samples, IDLE_CPU_WINDOW_S)
                finally:
                    stop.set()
                    os.environ.pop("JOBTUI_METRICS_PORT", None)
                kept = best[mode]
                kept["throughput"] = max(kept.get("throughput", 0.0), figures.throughput)
                per_job = 1e6 * side.cpu_s / jobs
                kept["supervisor_cpu_us_per_job"] = min(kept.get("supervisor_cpu_us_per_job",
                                                                 float("inf")), per_job)  # fmt: skip
                for name in ("latency_p50_ms", "latency_p95_ms"):
                    kept[name] = min(kept.get(name, float("inf")), getattr(figures, name))
    return [(name, best["off"][name], best["on"][name]) for name in best["off"]]


def report(out: dict[str, Figures]) -> list[tuple[str, str, str, str, str, str]]:
    j, h, n = out["jobtui"], out["huey"], out["huey_none"]
    rows = [
        ("wall, from launch (jobs/s)", f"{j.wall_throughput:,.0f}", f"{h.wall_throughput:,.0f}",
         f"{j.wall_throughput / h.wall_throughput:.2f}x", "", None),
        ("  huey returning None", "", f"{n.wall_throughput:,.0f}",
         f"{j.wall_throughput / n.wall_throughput:.2f}x", ">= 1.25x",
         j.wall_throughput >= 1.25 * n.wall_throughput),
        ("steady state (jobs/s)", f"{j.throughput:,.0f}", f"{h.throughput:,.0f}",
         f"{j.throughput / h.throughput:.2f}x", ">= 2x", j.throughput >= 2 * h.throughput),
        ("  huey returning None", "", f"{n.throughput:,.0f}",
         f"{j.throughput / n.throughput:.2f}x", "", None),
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


def _rounds_line(name: str, figures: Figures) -> str:
    steady = " ".join(f"{r[0]:,.0f}" for r in figures.rounds)
    wall = " ".join(f"{r[1]:,.0f}" for r in figures.rounds)
    startup = " ".join(f"{r[2]:.2f}" for r in figures.rounds)
    return f"{name:<22} wall {wall}   steady {steady}   first start after (s) {startup}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--idle-seconds", type=float, default=60.0)
    parser.add_argument("--rounds", type=int, default=3,
                        help="throughput drains per system, alternating (median reported)")  # fmt: skip
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--metrics-ratio", action="store_true",
                        help="jobtui alone, --metrics-port off and on in turn")  # fmt: skip
    parser.add_argument("--chatty", action="store_true",
                        help="only jobtui's throughput, of no-op jobs and of no-op jobs that "
                        "each write 10 lines (5 printed, 5 logged: the cost of job logs)")  # fmt: skip
    parser.add_argument("--fair-keys", type=int, default=0, metavar="K",
                        help="jobtui's jobs spread over K fair keys (the fair claim)")  # fmt: skip
    args = parser.parse_args()
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    compile_sources()
    if args.chatty:
        with tempfile.TemporaryDirectory() as folder:
            quiet = JobtuiSide(folder).throughput(args.jobs).steady
        with tempfile.TemporaryDirectory() as folder:
            chatty = JobtuiSide(folder).throughput(args.jobs, task="bench.chatty").steady
        print(
            f"no-op jobs/s {quiet:,.0f}  writing 10 lines {chatty:,.0f}  ratio {chatty / quiet:.2f}"
        )
        return
    if args.metrics_ratio:
        print(f"{'':<20}{'metrics off':>12}{'on':>12}{'on/off':>9}")
        for name, off, on in metrics_ratio(args.jobs, args.samples, args.rounds):
            print(f"{name:<20}{off:>12,.2f}{on:>12,.2f}{on / off:>9.3f}")
        return
    out = run(args.jobs, args.samples, args.idle_seconds, args.rounds, args.fair_keys)
    if args.json:
        print(json.dumps({k: asdict(v) for k, v in out.items()}, indent=2))
        return
    print(f"throughput: {args.jobs:,} no-op jobs, 2 workers, median of {args.rounds} "
          "alternating rounds; huey's task returns a value unless said")  # fmt: skip
    print(f"{'':<27}{'jobtui':>12}{'huey':>12}{'ratio':>9}{'target':>10}  result")
    for name, mine, theirs, ratio, target, verdict in report(out):
        print(f"{name:<27}{mine:>12}{theirs:>12}{ratio:>9}{target:>10}  {verdict}")
    print("each round (jobs/s):")
    for name, label in (("jobtui", "jobtui"), ("huey", "huey (returns a value)"),
                        ("huey_none", "huey (returns None)")):  # fmt: skip
        print("  " + _rounds_line(label, out[name]))


if __name__ == "__main__":
    main()
