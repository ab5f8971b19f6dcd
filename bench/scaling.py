"""How jobtui's throughput grows with workers and supervisors, on SQLite or PostgreSQL.

    python -m bench.scaling [--engine sqlite|postgresql] [--jobs N] [--layouts 1x2,1x8,2x4]
    python -m bench.scaling --peer pgqueuer [--jobs N] [--rounds N]   (bench/peers.py)

Each layout (supervisors x workers each) drains N no-op jobs enqueued beforehand into a
fresh database; jobs/s is N over the time from the first job's start to the last one's, as
in bench/supervisor.py. Ratios are to the first layout, all measured in one run (these
machines are shared and noisy). PostgreSQL uses a scratch database ``jobtui_bench`` on the
local server (``--admin-url``), dropped afterwards.

Why it matters: a turn of the supervisor carries what its workers may hold (the job each
runs and those prefetched: one, or up to 256 while jobs are this short; prefetch.py). Where
a turn's cost is mostly fixed — round trips and planning on PostgreSQL — more jobs per
turn, from more workers or deeper queues, pay; past that, one loop is one core, and a
second supervisor is a second loop.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

from bench.supervisor import ROOT, _stop, _tree, _wait_for, compile_sources

DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/test"
SCRATCH = "jobtui_bench"


def _scratch_postgres(admin_url: str, create: bool) -> str:
    import psycopg2

    admin = psycopg2.connect(admin_url)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS {SCRATCH} WITH (FORCE)")
        if create:
            cur.execute(f"CREATE DATABASE {SCRATCH}")
    admin.close()
    return admin_url.rsplit("/", 1)[0] + "/" + SCRATCH


def _fresh_database(engine: str, folder: str, admin_url: str, run: int) -> str:
    from jobtui.models import store

    store.reset()
    if engine == "sqlite":
        url = f"sqlite:///{os.path.join(folder, f'scaling-{run}.db')}"
    else:
        url = _scratch_postgres(admin_url, create=True)
    store.use_database(url)
    return url


def drain(url: str, jobs: int, supervisors: int, workers: int) -> float:
    """Jobs/s of ``supervisors`` supervisors with ``workers`` workers each over ``jobs``
    no-op jobs enqueued before they start."""
    import jobtui
    from jobtui.models import Job, Supervisor

    for start in range(0, jobs, 1000):
        jobtui.enqueue_many("bench.stamp", [{} for _ in range(min(1000, jobs - start))])
    env = dict(os.environ, JOBTUI_DATABASE=url, PYTHONPATH=ROOT)
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "jobtui.supervisor.main", "--import", "bench.bench_tasks",
             "--workers", str(workers), "--name", f"bench-{n}", "--log-level", "WARNING"],
            env=env, cwd=ROOT,
        )
        for n in range(supervisors)
    ]  # fmt: skip
    try:
        _wait_for(lambda: Supervisor.select().count() == supervisors, 30, "supervisors start")
        for proc in procs:
            _wait_for(lambda p=proc: len(_tree(p.pid)) >= 1 + workers, 30, "workers")
        _wait_for(lambda: Job.select().where(Job.status == "completed").count() == jobs,
                  900, "drain")  # fmt: skip
    finally:
        for proc in procs:
            _stop(proc)
    starts = [job.result for job in Job.select(Job.result)]
    return jobs / (max(starts) - min(starts))


def main() -> None:
    if "--peer" in sys.argv[1:]:  # the drain against a peer: bench/peers.py's own options
        from bench import peers

        argv = sys.argv[1:]
        at = argv.index("--peer")
        if argv[at + 1 : at + 2] != ["pgqueuer"]:
            sys.exit("bench.scaling: --peer takes pgqueuer (the one peer measured)")
        peers.main(argv[:at] + argv[at + 2 :])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--layouts", default="1x2,1x4,1x8,2x4",
                        help="supervisors x workers each, comma-separated")  # fmt: skip
    parser.add_argument("--admin-url", default=DEFAULT_ADMIN_URL)
    args = parser.parse_args()
    compile_sources()
    try:
        layouts = [tuple(int(n) for n in item.split("x")) for item in args.layouts.split(",")]
        if any(len(layout) != 2 or min(layout) < 1 for layout in layouts):
            raise ValueError
    except ValueError:
        parser.error(f"--layouts {args.layouts!r}: use SxW,SxW (e.g. 1x2,2x4)")
    print(f"{args.engine}, {args.jobs:,} no-op jobs per layout")
    print(f"{'supervisors x workers':<24}{'jobs/s':>10}{'ratio':>9}")
    first = None
    with tempfile.TemporaryDirectory(prefix="jobtui-scaling-") as folder:
        try:
            for run, (supervisors, workers) in enumerate(layouts):
                url = _fresh_database(args.engine, folder, args.admin_url, run)
                began = time.monotonic()
                rate = drain(url, args.jobs, supervisors, workers)
                first = first or rate
                print(f"{f'{supervisors} x {workers}':<24}{rate:>10,.0f}{rate / first:>8.2f}x"
                      f"   ({time.monotonic() - began:.0f} s)")  # fmt: skip
        finally:
            from jobtui.models import store

            store.reset()
            if args.engine == "postgresql":
                _scratch_postgres(args.admin_url, create=False)


if __name__ == "__main__":
    main()
