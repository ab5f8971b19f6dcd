"""Job-store benchmark: jobtui's enqueue, enqueue_many and claim-then-complete cycle against
the same SQL statements sent through the sqlite3 module with no ORM and no Python of ours;
on PostgreSQL, enqueue and enqueue_many against raw psycopg2 statements.

    python -m bench.store [--jobs N] [--engine sqlite|postgresql|both] [--pg URL] [--json]
    python -m bench.store --claim-backlog 1000000   # the claim behind a backlog (fair keys)

Every measurement gets a fresh SQLite file in one temp folder with jobtui's settings (WAL,
synchronous=NORMAL, busy_timeout, foreign keys) and jobtui's schema. The baseline runs one
transaction per job, as jobtui does for single enqueues and cycles (the physical limit for
that work); for enqueue_many both sides commit one transaction per chunk.

PostgreSQL (a database of the bench's own, created on the server ``--pg`` names and dropped
after): the baseline of ``enqueue`` is one INSERT with its NOTIFY in the same statement per
job (``WITH ins AS (INSERT …) SELECT pg_notify(…)``: one round trip, the least an enqueue
that wakes the supervisors can cost); of ``enqueue_many``, one multi-row INSERT per
1,000-row chunk. Both build their rows (id, JSON, timestamps) as jobtui's do.

``enqueue_vs_huey`` (SQLite, issue 17 item 3): jobtui's single enqueue against huey's (a
``SqliteHuey`` task called from the application, which writes its queue table), both at
WAL and synchronous=NORMAL (bench/huey_app.py), in alternating rounds on fresh files. Run
with huey installed (``pip install -e '.[bench]'``); without it the line is skipped.
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
from jobtui.models.staging import STAGED_BIT
from jobtui.models.workflow import _PROMOTE

PRAGMAS = ("PRAGMA journal_mode=wal", "PRAGMA busy_timeout=10000", "PRAGMA synchronous=normal",
           "PRAGMA foreign_keys=1")  # fmt: skip
INSERT = "INSERT INTO jobs ({}) VALUES ({})".format(
    ", ".join(INSERT_COLUMNS), ", ".join(":" + c for c in INSERT_COLUMNS)
)
CHUNK = 1000
TARGETS = {"enqueue": 0.25, "enqueue_many": 0.50, "cycle_1p": 0.25, "cycle_2p": 0.25,
           "pg_enqueue": 0.90, "pg_enqueue_many": 0.50, "enqueue_vs_huey": 0.50}  # fmt: skip
PG_ROUNDS = 10
#: What an enqueue by name of a catalogued task writes in jobs.unset_options (every option
#: left to the catalog): the raw baselines write the same rows.
UNSET_BY_CATALOG = 255
PG_ADMIN = os.environ.get("JOBTUI_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/test")


def _publish_bench_task(db) -> None:
    """``bench.noop`` in the task catalog, as a supervisor that serves it publishes it: an
    enqueue by name then fills its options from the catalog (UNSET_BY_CATALOG) rather than
    marking the job's queue unresolved for a supervisor to re-home (an extra index entry a
    deployed application does not write)."""
    from jobtui.models.catalog import catalog_row, publish_tasks
    from jobtui.models.dialect import dialect_for

    with dialect_for(db).write_transaction(db):
        publish_tasks(db, "bench", "localhost", [catalog_row("bench.noop", {}, "bench")])


def _fresh(folder: str, name: str) -> str:
    path = os.path.join(folder, f"{name}.db")
    store.reset()
    _publish_bench_task(store.use_database(f"sqlite:///{path}"))  # jobtui's schema
    store.reset()
    return path


def _raw(path: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, timeout=10)
    for pragma in PRAGMAS:
        conn.execute(pragma)
    return conn


def _now() -> str:
    return datetime.now(UTC).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")


def _raw_row(n: int, *, staged: bool = False) -> dict:
    """jobtui's row for job ``n``; ``staged`` as a single SQLite enqueue writes it (schema
    16: outside the claim and task indexes, models/staging.py), so the raw baseline
    writes the same b-trees."""
    stamp = _now()
    row = dict.fromkeys(INSERT_COLUMNS)
    row.update(id=str(uuid.uuid4()), job_type="bench.noop", status="pending",
               parameters=json.dumps({"args": [n], "kwargs": {}}), progress_percentage=0,
               max_retries=3, retry_count=0, priority=0, queue_name="default", created_at=stamp,
               updated_at=stamp, run_at=stamp, attempt=0, cancel_requested=0,
               error_permanent=0, has_dependants=0,
               unset_options=UNSET_BY_CATALOG | (STAGED_BIT if staged else 0))  # fmt: skip
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
        conn.execute(INSERT, _raw_row(n, staged=True))  # autocommit: one transaction per job
    elapsed = time.perf_counter() - started
    conn.close()
    return jobs / elapsed


def huey_enqueue(folder: str, jobs: int) -> float:
    """huey's enqueue from the application: calling a task writes one row to its queue."""
    os.environ.setdefault("BENCH_HUEY_DB", os.path.join(folder, "huey.db"))
    os.environ.setdefault("BENCH_HUEY_STARTS", folder)
    from bench import huey_app

    huey_app.huey.flush()  # an empty queue each round, as jobtui's fresh file
    huey_app.noop()  # the connection and the table, outside the clock (as jobtui's first)
    started = time.perf_counter()
    for _ in range(jobs):
        huey_app.noop()
    elapsed = time.perf_counter() - started
    huey_app.huey.flush()
    return jobs / elapsed


def _vs_huey(folder: str, jobs: int, rounds: int = 4) -> tuple[float, float] | None:
    """jobtui's and huey's single-enqueue rates over alternating rounds (None: no huey)."""
    try:
        import huey  # noqa: F401
    except ImportError:
        print("enqueue_vs_huey skipped: huey is not installed (pip install -e '.[bench]')")
        return None
    per_round = max(1, jobs // rounds)
    elapsed = {"jobtui": 0.0, "huey": 0.0}
    for n in range(rounds):
        path = _fresh(folder, f"vh{n}")
        elapsed["jobtui"] += per_round / jobtui_enqueue(path, per_round)
        elapsed["huey"] += per_round / huey_enqueue(folder, per_round)
    total = per_round * rounds
    return total / elapsed["jobtui"], total / elapsed["huey"]


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
                                    "worker_name": "bench", "supervisor_name": None,
                                    "capped": False}).fetchall()  # fmt: skip
        conn.execute("COMMIT")
        if not rows:
            break
        job_id, attempt, token = rows[0][0], rows[0][3], rows[0][4]
        now = _now()
        params = {"id": job_id, "attempt": attempt, "token": token, "now": now, "no": False,
                  "error": None, "error_type": None, "traceback": None, "result": "null",
                  "worker_name": "bench", "started_at": None}  # fmt: skip
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


# ------------------------------------------------------------------ PostgreSQL


def _pg_values(rows: int) -> str:
    one = "(" + ", ".join(["%s"] * len(INSERT_COLUMNS)) + ")"
    return ", ".join([one] * rows)


PG_INSERT = "INSERT INTO jobs ({}) VALUES ".format(", ".join(INSERT_COLUMNS))
PG_INSERT_NOTIFY = "WITH ins AS ({}{}) SELECT pg_notify('jobtui_wake', '!')"


def _pg_flat(rows: list[dict]) -> list:
    return [row[c] if c not in ("cancel_requested", "error_permanent", "has_dependants")
            else bool(row[c]) for row in rows for c in INSERT_COLUMNS]  # fmt: skip


def _pg_fresh(url: str) -> None:
    import psycopg2

    conn = psycopg2.connect(url)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("TRUNCATE jobs CASCADE")
        cur.execute("VACUUM ANALYZE jobs")
    conn.close()


def pg_jobtui_enqueue(url: str, jobs: int) -> float:
    import jobtui

    store.use_database(url)
    jobtui.enqueue("bench.noop", args=[-1])  # untimed, as the raw side's: the connection
    started = time.perf_counter()
    for n in range(jobs):
        jobtui.enqueue("bench.noop", args=[n])
    elapsed = time.perf_counter() - started
    store.reset()
    return jobs / elapsed


def pg_raw_enqueue(url: str, jobs: int) -> float:
    import psycopg2

    conn = psycopg2.connect(url)
    conn.autocommit = True
    cur = conn.cursor()
    sql = PG_INSERT_NOTIFY.format(PG_INSERT, _pg_values(1))
    cur.execute(sql, _pg_flat([_raw_row(-1)]))  # untimed, as jobtui's first enqueue
    started = time.perf_counter()
    for n in range(jobs):
        cur.execute(sql, _pg_flat([_raw_row(n)]))  # one statement, one round trip
    elapsed = time.perf_counter() - started
    conn.close()
    return jobs / elapsed


def pg_jobtui_enqueue_many(url: str, jobs: int) -> float:
    import jobtui

    store.use_database(url)
    jobtui.enqueue("bench.noop", args=[-1])  # untimed, as the raw side's: the connection
    started = time.perf_counter()
    for start in range(0, jobs, CHUNK):
        jobtui.enqueue_many(
            "bench.noop", [{"args": [n]} for n in range(start, min(jobs, start + CHUNK))]
        )
    elapsed = time.perf_counter() - started
    store.reset()
    return jobs / elapsed


def pg_raw_enqueue_many(url: str, jobs: int) -> float:
    import psycopg2

    conn = psycopg2.connect(url)
    conn.autocommit = True
    cur = conn.cursor()
    cur.execute(PG_INSERT + _pg_values(1), _pg_flat([_raw_row(-1)]))  # untimed, as jobtui's
    started = time.perf_counter()
    for start in range(0, jobs, CHUNK):
        rows = [_raw_row(n) for n in range(start, min(jobs, start + CHUNK))]
        cur.execute(PG_INSERT + _pg_values(len(rows)), _pg_flat(rows))  # one statement a chunk
    elapsed = time.perf_counter() - started
    conn.close()
    return jobs / elapsed


def _pg_database(admin_url: str):
    """A database of the bench's own with jobtui's schema: (url, drop)."""
    import psycopg2

    admin = psycopg2.connect(admin_url, connect_timeout=3)
    admin.autocommit = True
    name = f"jobtui_bench_{os.getpid()}"
    with admin.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    url = admin_url.rsplit("/", 1)[0] + "/" + name
    store.reset()
    _publish_bench_task(store.use_database(url))
    store.reset()

    def drop() -> None:
        store.reset()
        with admin.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()

    return url, drop


# ------------------------------------------------------------------ main


def run(
    jobs: int, engines: tuple[str, ...] = ("sqlite", "postgresql"), pg: str = PG_ADMIN
) -> list[dict]:
    results = []

    def record(name: str, mine: float, base: float) -> None:
        results.append({"measurement": name, "jobtui_per_s": mine, "raw_per_s": base,
                        "ratio": mine / base, "target": TARGETS[name],
                        "pass": mine / base >= TARGETS[name]})  # fmt: skip

    def measure(name: str, ours, raw) -> None:
        record(name, ours(), raw())

    if "sqlite" in engines:
        _run_sqlite(jobs, measure)
        with tempfile.TemporaryDirectory(prefix="jobtui-bench-") as folder:
            against_huey = _vs_huey(folder, jobs)
        if against_huey is not None:
            record("enqueue_vs_huey", *against_huey)
    if "postgresql" in engines:
        url, drop = _pg_database(pg)
        try:
            single, many = max(1000, jobs // 4), jobs * 5
            record("pg_enqueue", *_interleaved(url, pg_jobtui_enqueue, pg_raw_enqueue, single))
            record("pg_enqueue_many",
                   *_interleaved(url, pg_jobtui_enqueue_many, pg_raw_enqueue_many, many))  # fmt: skip
        finally:
            drop()
    return results


def _interleaved(url: str, ours, raw, jobs: int, rounds: int = PG_ROUNDS) -> tuple[float, float]:
    """Both rates over ``rounds`` alternating rounds on an emptied table: every commit
    waits for a WAL flush, so a shared server's load drifts within one run, and
    alternating puts both sides under the same drift."""
    per_round = max(1, jobs // rounds)
    elapsed = {ours: 0.0, raw: 0.0}
    for _ in range(rounds):
        for fn in (ours, raw):
            _pg_fresh(url)
            elapsed[fn] += per_round / fn(url, per_round)
    return per_round * rounds / elapsed[ours], per_round * rounds / elapsed[raw]


def _run_sqlite(jobs: int, measure) -> None:
    with tempfile.TemporaryDirectory(prefix="jobtui-bench-") as folder:
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--engine", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--pg", default=PG_ADMIN, help="PostgreSQL server (a database on it)")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--claim-backlog", type=int, default=0, metavar="N",
                        help="instead: the claim's cost behind N pending jobs, fair keys "
                        "off and on, with the plans (bench/claim_backlog.py)")  # fmt: skip
    parser.add_argument("--claims", type=int, default=200, help="claims timed per setting")
    args = parser.parse_args()
    engines = ("sqlite", "postgresql") if args.engine == "both" else (args.engine,)
    if args.claim_backlog:
        from bench import claim_backlog

        found = claim_backlog.run(list(engines), args.claim_backlog, args.claims, args.pg)
        print(json.dumps(found, indent=2)) if args.json else claim_backlog.report(found)
        return
    results = run(args.jobs, engines, args.pg)
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(
        f"{'measurement':<17}{'jobtui jobs/s':>15}{'raw jobs/s':>14}{'ratio':>8}{'target':>8}  result"
    )
    for r in results:
        print(f"{r['measurement']:<17}{r['jobtui_per_s']:>15,.0f}{r['raw_per_s']:>14,.0f}"
              f"{r['ratio']:>8.2f}{r['target']:>8.2f}  {'PASS' if r['pass'] else 'FAIL'}")  # fmt: skip
    for line in target_lines(results):
        print(line)


#: Issue 13 item 11's targets: measurement -> what it compares.
ISSUE_13_ITEM_11 = {
    "pg_enqueue": "single enqueue vs a raw INSERT with its NOTIFY in one statement",
    "pg_enqueue_many": "enqueue_many vs a raw multi-row INSERT of the same rows",
}


def target_lines(results: list[dict]) -> list[str]:
    """One line per target of issues 13 (item 11) and 17 (item 3) measured in this run:
    PASS/FAIL, the ratio."""
    lines = []
    for r in results:
        if r["measurement"] == "enqueue_vs_huey":
            lines.append(
                f"issue 17 item 3, SQLite single enqueue vs huey's (raw jobs/s column: huey): "
                f"{r['ratio']:.2f}x (target >= {r['target']:.2f}x) "
                f"{'PASS' if r['pass'] else 'FAIL'}"
            )
        if r["measurement"] in ISSUE_13_ITEM_11:
            lines.append(
                f"issue 13 item 11, PostgreSQL {ISSUE_13_ITEM_11[r['measurement']]}: "
                f"{r['ratio']:.2f}x (target >= {r['target']:.2f}x) "
                f"{'PASS' if r['pass'] else 'FAIL'}"
            )
    return lines


if __name__ == "__main__":
    main()
