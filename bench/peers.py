"""Drain speed on PostgreSQL against pgqueuer, in one run (issue 17).

    python -m bench.peers [--jobs N] [--rounds N] [--admin-url URL] [--json]
    python -m bench.scaling --peer pgqueuer [--jobs N] [--rounds N]     (the same)

Each system drains N no-op jobs enqueued beforehand into a fresh database of its own
(``jobtui_bench`` on the local server, dropped afterwards), in alternating rounds (each
round in another order); the figures are each system's median:

- jobtui, 1 supervisor x 2 workers: the task returns the time it started (stored in the
  job's row);
- pgqueuer (``pip install -e '.[bench]'``): two worker processes, each what ``pgq run``
  runs (``pgqueuer.run``, bench/pgqueuer_app.py) on its asyncpg driver with its default
  settings (batch size 10, durable tables), a no-op ``async`` entrypoint; its jobs
  enqueued through its own batch ``enqueue``;
- jobtui, 2 supervisors x 2 workers each: against the first, how far a second
  supervisor's loop scales the drain (issue 17's target: 1.6x).

Two figures per drain, jobs/s: *wall*, N over the time from launching the first daemon to
the last job done (what a user timing the drain sees: for jobtui its last completion's
``completed_at``, for pgqueuer its last ``successful`` log row, written when its
completion buffer flushes); *steady*, N over the time from the first job's start to the
last one's (jobtui: the jobs' results; pgqueuer: its ``picked`` log rows, one per job,
stamped by the batch's pick).

Then the CPU each system spent per 1,000 jobs (bench/cpu.py), read as each drain ends:
its daemons' processes (workers included) and, on a local server, the backends of their
connections, with the rates those bound it to on this machine: its cores over the total,
and one core over the busiest backend (a connection's backend is one process, so one
supervisor's server work cannot use more than one core).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC

from bench.cpu import BACKENDS_SQL, CpuSplit, cpu_split
from bench.supervisor import (
    DRAIN_POLL_S,
    ROOT,
    Drain,
    _stop,
    _tree,
    _wait_for,
    compile_sources,
    drain_figures,
)

DEFAULT_ADMIN_URL = os.environ.get("JOBTUI_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/test")
SCRATCH = "jobtui_bench"
PGQUEUER_WORKERS = 2


def scratch_database(admin_url: str, create: bool = True) -> str:
    """A fresh empty ``jobtui_bench`` database on the server of ``admin_url``; its URL."""
    import psycopg2

    admin = psycopg2.connect(admin_url)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS {SCRATCH} WITH (FORCE)")
        if create:
            cur.execute(f"CREATE DATABASE {SCRATCH}")
            # each system starts on a settled server: the previous round's dirty pages
            # written now, not during this drain (needs superuser or pg_checkpoint)
            try:
                cur.execute("CHECKPOINT")
            except psycopg2.Error:
                pass
    admin.close()
    return admin_url.rsplit("/", 1)[0] + "/" + SCRATCH


# --------------------------------------------------------------------------- jobtui


def jobtui_drain(url: str, jobs: int, supervisors: int, workers: int) -> Drain:
    """``supervisors`` supervisors of ``workers`` workers each drain ``jobs`` no-op jobs
    enqueued before they start."""
    import peewee

    import jobtui
    from jobtui.models import Job, Supervisor, store
    from jobtui.models.base import as_datetime

    store.reset()
    store.use_database(url)
    for start in range(0, jobs, 1000):
        jobtui.enqueue_many("bench.stamp", [{} for _ in range(min(1000, jobs - start))])
    env = dict(os.environ, JOBTUI_DATABASE=url, PYTHONPATH=ROOT)
    launched = time.time()
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "jobtui.supervisor.main", "--import", "bench.bench_tasks",
             "--workers", str(workers), "--name", f"bench-{n}", "--log-level", "WARNING"],
            env=env, cwd=ROOT,
        )
        for n in range(supervisors)
    ]  # fmt: skip
    live = Job.select(Job.id).where(Job.status.in_(["pending", "running", "retrying"]))

    def drained() -> bool:
        for proc in procs:
            if proc.poll() is not None:
                raise RuntimeError(f"a jobtui supervisor exited ({proc.returncode})")
        return live.clone().first() is None  # (a fresh copy: a query caches its result)

    try:
        _wait_for(lambda: Supervisor.select().count() == supervisors, 30, "supervisors start")
        for proc in procs:
            _wait_for(lambda p=proc: len(_tree(p.pid)) >= 1 + workers, 30, "workers")
        _wait_for(drained, 900, "jobtui drain", DRAIN_POLL_S)
        db = Job._meta.database
        cpu = cpu_split([p for proc in procs for p in _tree(proc.pid)], url,
                        lambda: [row[0] for row in db.execute_sql(BACKENDS_SQL).fetchall()])  # fmt: skip
    finally:
        for proc in procs:
            _stop(proc)
    assert Job.select().where(Job.status == "completed").count() == jobs
    starts = [job.result for job in Job.select(Job.result)]
    done = as_datetime(Job.select(peewee.fn.MAX(Job.completed_at)).scalar())
    store.reset()
    return _with_cpu(
        drain_figures(jobs, launched, starts, done.replace(tzinfo=UTC).timestamp()), cpu
    )


def _with_cpu(drain: Drain, cpu: CpuSplit) -> Drain:
    drain.cpu_daemons_s = cpu.daemons_s
    drain.cpu_backends_s = cpu.backends_s
    drain.cpu_busiest_backend_s = cpu.busiest_backend_s
    return drain


# --------------------------------------------------------------------------- pgqueuer


async def _pgqueuer_enqueue(url: str, jobs: int) -> None:
    import asyncpg
    from pgqueuer import AsyncpgDriver, Queries

    connection = await asyncpg.connect(url)
    try:
        queries = Queries(AsyncpgDriver(connection))
        for start in range(0, jobs, 1000):
            count = min(1000, jobs - start)
            await queries.enqueue(["bench.noop"] * count, [None] * count, [0] * count)
    finally:
        await connection.close()


def pgqueuer_drain(url: str, jobs: int) -> Drain:
    """Two pgqueuer worker processes drain ``jobs`` no-op jobs enqueued before they start."""
    import psycopg2

    env = dict(os.environ, PGDSN=url, BENCH_PG_URL=url, PYTHONPATH=ROOT)
    subprocess.run([sys.executable, "-m", "pgqueuer", "install"], env=env, cwd=ROOT,
                   check=True, capture_output=True)  # fmt: skip
    asyncio.run(_pgqueuer_enqueue(url, jobs))
    conn = psycopg2.connect(url)
    conn.autocommit = True
    cur = conn.cursor()

    def drained() -> bool:
        for proc in procs:
            if proc.poll() is not None:
                raise RuntimeError(f"a pgqueuer worker exited ({proc.returncode})")
        cur.execute("SELECT 1 FROM pgqueuer LIMIT 1")
        return cur.fetchone() is None

    launched = time.time()
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "bench.pgqueuer_app"],
            env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        for _ in range(PGQUEUER_WORKERS)
    ]  # fmt: skip
    try:
        _wait_for(drained, 900, "pgqueuer drain", DRAIN_POLL_S)

        def backends() -> list[int]:
            cur.execute(BACKENDS_SQL)
            return [row[0] for row in cur.fetchall()]

        cpu = cpu_split([p for proc in procs for p in _tree(proc.pid)], url, backends)
    finally:
        for proc in procs:
            _stop(proc)
    cur.execute("""SELECT status::text, count(*), extract(epoch FROM min(created)),
                          extract(epoch FROM max(created))
                   FROM pgqueuer_log WHERE status IN ('picked', 'successful')
                   GROUP BY status""")  # fmt: skip
    found = {status: (count, float(first), float(last)) for status, count, first, last in cur}
    conn.close()
    assert found["successful"][0] == jobs and found["picked"][0] == jobs, found
    picks = [found["picked"][1], found["picked"][2]]
    return _with_cpu(drain_figures(jobs, launched, picks, found["successful"][2]), cpu)


# --------------------------------------------------------------------------- main


SYSTEMS: dict[str, tuple[str, Callable[[str, int], Drain]]] = {
    "jobtui_1x2": ("jobtui, 1 supervisor x 2 workers", lambda url, n: jobtui_drain(url, n, 1, 2)),
    "pgqueuer": (f"pgqueuer, {PGQUEUER_WORKERS} workers, batch 10", pgqueuer_drain),
    "jobtui_2x2": ("jobtui, 2 supervisors x 2 workers", lambda url, n: jobtui_drain(url, n, 2, 2)),
}


def run(jobs: int, rounds: int, admin_url: str) -> dict[str, list[Drain]]:
    names = list(SYSTEMS)
    out: dict[str, list[Drain]] = {name: [] for name in names}
    try:
        for n in range(rounds):
            for name in names[n % len(names) :] + names[: n % len(names)]:
                url = scratch_database(admin_url)
                out[name].append(SYSTEMS[name][1](url, jobs))
    finally:
        from jobtui.models import store

        store.reset()
        scratch_database(admin_url, create=False)
    return out


def _median(drains: list[Drain], field: str) -> float:
    return statistics.median(getattr(d, field) for d in drains)


def report(out: dict[str, list[Drain]]) -> list[str]:
    lines = [f"{'':<36}{'wall jobs/s':>12}{'steady jobs/s':>15}   each round (wall / steady)"]
    for name, (label, _) in SYSTEMS.items():
        each = "  ".join(f"{d.wall:,.0f}/{d.steady:,.0f}" for d in out[name])
        lines.append(f"{label:<36}{_median(out[name], 'wall'):>12,.0f}"
                     f"{_median(out[name], 'steady'):>15,.0f}   {each}")  # fmt: skip
    for mine, theirs, what, target in (
        ("jobtui_1x2", "pgqueuer", "jobtui 2 workers / pgqueuer 2 workers", 1.5),
        ("jobtui_2x2", "jobtui_1x2", "jobtui 2 supervisors x 2 / 1 supervisor x 2", 1.6),
    ):
        wall = _median(out[mine], "wall") / _median(out[theirs], "wall")
        steady = _median(out[mine], "steady") / _median(out[theirs], "steady")
        lines.append(f"{what}: wall {wall:.2f}x, steady {steady:.2f}x "
                     f"(issue 17 target >= {target}x: {'PASS' if wall >= target else 'FAIL'})")  # fmt: skip
    return lines


def cpu_report(out: dict[str, list[Drain]]) -> list[str]:
    """CPU per 1,000 jobs (medians), and the rates it bounds each system to: the machine's
    cores over the total, one core over the busiest backend (one connection's backend is
    one process)."""
    import psutil

    cores = psutil.cpu_count() or 1
    totals: dict[str, float] = {}  # CPU seconds per 1,000 jobs, daemons and backends
    lines = [f"{'CPU seconds per 1,000 jobs':<36}{'daemons':>8}{'backends':>10}{'total':>8}"
             f"{'busiest':>9}   bound: {cores} cores / total, 1 core / busiest backend"]  # fmt: skip
    for name, (label, _) in SYSTEMS.items():
        drains = [d for d in out[name] if d.cpu_daemons_s is not None]
        if not drains:
            continue
        daemons = statistics.median(1000 * d.cpu_daemons_s / d.jobs for d in drains)
        if any(d.cpu_backends_s is None for d in drains):
            lines.append(f"{label:<36}{daemons:>8.2f}   (backends not readable here)")
            continue
        backends = statistics.median(1000 * d.cpu_backends_s / d.jobs for d in drains)
        busiest = statistics.median(1000 * d.cpu_busiest_backend_s / d.jobs for d in drains)
        total = daemons + backends
        totals[name] = total
        lines.append(f"{label:<36}{daemons:>8.3f}{backends:>10.3f}{total:>8.3f}{busiest:>9.3f}"
                     f"   {1000 * cores / total:,.0f} and {1000 / busiest:,.0f} jobs/s")  # fmt: skip
    return lines + scaling_ceiling(out, totals, cores)


def scaling_ceiling(out: dict[str, list[Drain]], totals: dict[str, float], cores: int) -> list[str]:
    """What the machine leaves a second supervisor (issue 17's 1.6x target): the cores one
    supervisor's drain kept busy (its CPU a job times its wall rate, backends included),
    so the most more supervisors could add at that CPU a job; and how near two came to
    the bound their own CPU a job sets."""
    one, two = totals.get("jobtui_1x2"), totals.get("jobtui_2x2")
    if one is None or two is None:
        return []
    used = one / 1000 * _median(out["jobtui_1x2"], "wall")
    reached = _median(out["jobtui_2x2"], "wall") / (1000 * cores / two)
    return [f"one supervisor kept {used:.2f} of {cores} cores busy: at its CPU a job more "
            f"supervisors can add at most {cores / used:.2f}x on this machine; two reached "
            f"{100 * reached:.0f} % of the {cores}-core bound at theirs"]  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--admin-url", default=DEFAULT_ADMIN_URL)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    compile_sources()
    if args.rounds < 1 or args.jobs < 1:
        parser.error("--jobs and --rounds must be at least 1")
    try:
        import pgqueuer  # noqa: F401
    except ImportError:
        parser.exit(2, "bench.peers needs pgqueuer: pip install -e '.[bench]'\n")
    out = run(args.jobs, args.rounds, args.admin_url)
    if args.json:
        print(json.dumps({k: [vars(d) for d in v] for k, v in out.items()}, indent=2))
        return
    print(f"PostgreSQL, {args.jobs:,} no-op jobs per drain, median of {args.rounds} "
          "alternating rounds")  # fmt: skip
    for line in report(out) + cpu_report(out):
        print(line)


if __name__ == "__main__":
    main()
