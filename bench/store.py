"""Job-store benchmark: jobtui's enqueue, enqueue_many and claim-then-complete cycle against
the same SQL statements sent through the sqlite3 module with no ORM and no Python of ours.

    python -m bench.store [--jobs N] [--json]

Every measurement gets a fresh SQLite file in one temp folder with jobtui's settings (WAL,
synchronous=NORMAL, busy_timeout, foreign keys) and jobtui's schema. The baseline runs one
transaction per job, as jobtui does for single enqueues and cycles (the physical limit for
that work); for enqueue_many both sides commit one transaction per chunk.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sqlite3
import tempfile
import time
import uuid
from datetime import UTC, datetime

from jobtui.models import store
from jobtui.models.claims import claim_jobs, complete_job
from jobtui.models.dialect import SQLITE
from jobtui.models.enqueueing import INSERT_COLUMNS
from jobtui.models.outcomes import _ATTEMPT, _COMPLETED
from jobtui.models.workflow import _PROMOTE

PRAGMAS = ("PRAGMA journal_mode=wal", "PRAGMA busy_timeout=10000", "PRAGMA synchronous=normal",
           "PRAGMA foreign_keys=1")  # fmt: skip
INSERT = "INSERT INTO jobs ({}) VALUES ({})".format(
    ", ".join(INSERT_COLUMNS), ", ".join(":" + c for c in INSERT_COLUMNS)
)
CHUNK = 1000
TARGETS = {"enqueue": 0.25, "enqueue_many": 0.50, "cycle_1p": 0.25, "cycle_2p": 0.25}


def _fresh(folder: str, name: str) -> str:
    path = os.path.join(folder, f"{name}.db")
    store.reset()
    store.use_database(f"sqlite:///{path}")  # jobtui's schema and settings
    store.reset()
    return path


def _raw(path: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, timeout=10)
    for pragma in PRAGMAS:
        conn.execute(pragma)
    return conn


def _now() -> str:
    return datetime.now(UTC).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")


def _raw_row(n: int) -> dict:
    stamp = _now()
    row = dict.fromkeys(INSERT_COLUMNS)
    row.update(id=str(uuid.uuid4()), job_type="bench.noop", status="pending",
               parameters=json.dumps({"args": [n], "kwargs": {}}), progress_percentage=0,
               max_retries=3, retry_count=0, priority=0, queue_name="default", created_at=stamp,
               updated_at=stamp, run_at=stamp, attempt=0, cancel_requested=0,
               error_permanent=0, has_dependants=0)  # fmt: skip
    return row


# ------------------------------------------------------------------ enqueue


def jobtui_enqueue(path: str, jobs: int) -> float:
    import jobtui

    store.use_database(f"sqlite:///{path}")
    started = time.perf_counter()
    for n in range(jobs):
        jobtui.enqueue("bench.noop", args=[n])
    elapsed = time.perf_counter() - started
    store.reset()
    return jobs / elapsed


def raw_enqueue(path: str, jobs: int) -> float:
    conn = _raw(path)
    started = time.perf_counter()
    for n in range(jobs):
        conn.execute(INSERT, _raw_row(n))  # autocommit: one transaction per job
    elapsed = time.perf_counter() - started
    conn.close()
    return jobs / elapsed


def jobtui_enqueue_many(path: str, jobs: int) -> float:
    import jobtui

    store.use_database(f"sqlite:///{path}")
    started = time.perf_counter()
    for start in range(0, jobs, CHUNK):
        jobtui.enqueue_many(
            "bench.noop", [{"args": [n]} for n in range(start, min(jobs, start + CHUNK))]
        )
    elapsed = time.perf_counter() - started
    store.reset()
    return jobs / elapsed


def raw_enqueue_many(path: str, jobs: int) -> float:
    conn = _raw(path)
    started = time.perf_counter()
    for start in range(0, jobs, CHUNK):
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(INSERT, [_raw_row(n) for n in range(start, min(jobs, start + CHUNK))])
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - started
    conn.close()
    return jobs / elapsed


# ------------------------------------------------------------------ claim-then-complete


def _seed(path: str, jobs: int) -> None:
    conn = _raw(path)
    conn.execute("BEGIN IMMEDIATE")
    conn.executemany(INSERT, [_raw_row(n) for n in range(jobs)])
    conn.execute("COMMIT")
    conn.close()


def _jobtui_cycle_worker(path: str, barrier, results) -> None:
    store.reset()
    store.use_database(f"sqlite:///{path}")
    done = 0
    barrier.wait()
    started = time.perf_counter()
    while True:
        claimed = claim_jobs(1, worker_name="bench")
        if not claimed:
            break
        job = claimed[0]
        complete_job(job.id, job.attempt, job.lease_token, None)
        done += 1
    results.put((done, started, time.perf_counter()))


def _raw_cycle_worker(path: str, barrier, results) -> None:
    conn = _raw(path)
    claim, complete = SQLITE.claim_sql, SQLITE.sql(_COMPLETED)
    attempt_sql, promote = SQLITE.sql(_ATTEMPT), SQLITE.sql(_PROMOTE)
    done = 0
    barrier.wait()
    started = time.perf_counter()
    while True:
        now = _now()
        conn.execute("BEGIN IMMEDIATE")
        rows = conn.execute(claim, {"now": now, "queues": None, "tasks": None, "limit": 1,
                                    "worker_name": "bench", "supervisor_name": None}).fetchall()  # fmt: skip
        conn.execute("COMMIT")
        if not rows:
            break
        job_id, attempt, token = rows[0][0], rows[0][3], rows[0][4]
        now = _now()
        params = {"id": job_id, "attempt": attempt, "token": token, "now": now, "no": False,
                  "error": None, "error_type": None, "traceback": None, "result": "null",
                  "worker_name": "bench"}  # fmt: skip
        conn.execute("BEGIN IMMEDIATE")
        started_at = conn.execute(complete, params).fetchone()[0]
        conn.execute(attempt_sql, {**params, "started_at": started_at, "outcome": "completed",
                                   "worker_name": "bench", "supervisor_name": None, "pid": None,
                                   "host": None})  # fmt: skip
        conn.execute(promote, {"id": job_id, "now": now})
        conn.execute("COMMIT")
        done += 1
    results.put((done, started, time.perf_counter()))
    conn.close()


def cycle(path: str, processes: int, target) -> float:
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(processes), context.Queue()
    procs = [
        context.Process(target=target, args=(path, barrier, results)) for _ in range(processes)
    ]
    for proc in procs:
        proc.start()
    gathered = [results.get(timeout=600) for _ in procs]
    for proc in procs:
        proc.join()
    done = sum(g[0] for g in gathered)
    return done / (max(g[2] for g in gathered) - min(g[1] for g in gathered))


# ------------------------------------------------------------------ main


def run(jobs: int) -> list[dict]:
    results = []
    with tempfile.TemporaryDirectory(prefix="jobtui-bench-") as folder:

        def measure(name: str, ours, raw) -> None:
            mine, base = ours(), raw()
            results.append({"measurement": name, "jobtui_per_s": mine, "raw_per_s": base,
                            "ratio": mine / base, "target": TARGETS[name],
                            "pass": mine / base >= TARGETS[name]})  # fmt: skip

        measure(
            "enqueue",
            lambda: jobtui_enqueue(_fresh(folder, "e1"), jobs),
            lambda: raw_enqueue(_fresh(folder, "e2"), jobs),
        )
        many = jobs * 5
        measure(
            "enqueue_many",
            lambda: jobtui_enqueue_many(_fresh(folder, "m1"), many),
            lambda: raw_enqueue_many(_fresh(folder, "m2"), many),
        )
        for processes in (1, 2):

            def ours(p=processes):
                path = _fresh(folder, f"c{p}a")
                _seed(path, jobs)
                return cycle(path, p, _jobtui_cycle_worker)

            def raw(p=processes):
                path = _fresh(folder, f"c{p}b")
                _seed(path, jobs)
                return cycle(path, p, _raw_cycle_worker)

            measure(f"cycle_{processes}p", ours, raw)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    results = run(args.jobs)
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(
        f"{'measurement':<14}{'jobtui jobs/s':>15}{'raw sqlite3':>14}{'ratio':>8}{'target':>8}  result"
    )
    for r in results:
        print(f"{r['measurement']:<14}{r['jobtui_per_s']:>15,.0f}{r['raw_per_s']:>14,.0f}"
              f"{r['ratio']:>8.2f}{r['target']:>8.2f}  {'PASS' if r['pass'] else 'FAIL'}")  # fmt: skip


if __name__ == "__main__":
    main()
