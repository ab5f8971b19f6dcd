"""jobtui.aio's enqueue rates against the sync API's, on SQLite and PostgreSQL.

    python -m bench.aio [--jobs N] [--concurrency N] [--rounds N] [--postgres URL] [--json]

Each measurement enqueues ``--jobs`` jobs into a fresh database (a SQLite file in a temp
folder; a PostgreSQL database created for the run and dropped after it) and reports
jobs/s (the best of ``--rounds``) and the ratio to the sync API's one-by-one ``enqueue``:

- ``sync enqueue``: ``jobtui.enqueue`` in a loop (one transaction each);
- ``aio enqueue, sequential``: ``await jobtui.aio.enqueue`` in a loop;
- ``aio enqueue, N tasks``: N coroutines each awaiting its share of ``aio.enqueue``;
- ``sync enqueue_many`` / ``aio enqueue_many``: chunks of 500 in one transaction each.

While the aio runs go, a 1 ms ticker on the same loop records its worst lag (actual vs
expected wake-up of ``asyncio.sleep(0.001)``), raw and without the time its thread waited
for a CPU (bench/ticker.py): the event loop's responsiveness.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable

import jobtui
from jobtui import aio
from jobtui.aio_runner import stop_runner
from jobtui.models import store

from .ticker import LagTicker

TASK = "bench.aio_noop"
CHUNK = 500
PG_DEFAULT = os.environ.get("JOBTUI_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


async def _ticking(work: Callable[[], Awaitable[None]]) -> tuple[float, LagTicker]:
    """Run ``work`` with a 1 ms ticker beside it: (seconds taken, the ticker)."""
    async with LagTicker() as ticker:
        start = time.perf_counter()
        await work()
        taken = time.perf_counter() - start
    return taken, ticker


def _sync_enqueue(jobs: int) -> float:
    start = time.perf_counter()
    for n in range(jobs):
        jobtui.enqueue(TASK, args=[n])
    return time.perf_counter() - start


def _sync_many(jobs: int) -> float:
    start = time.perf_counter()
    for first in range(0, jobs, CHUNK):
        jobtui.enqueue_many(TASK, [{"args": [n]} for n in range(first, min(jobs, first + CHUNK))])
    return time.perf_counter() - start


async def _aio_sequential(jobs: int) -> None:
    for n in range(jobs):
        await aio.enqueue(TASK, args=[n])


async def _aio_concurrent(jobs: int, tasks: int) -> None:
    async def share(k: int) -> None:
        for n in range(k, jobs, tasks):
            await aio.enqueue(TASK, args=[n])

    await asyncio.gather(*(share(k) for k in range(tasks)))


async def _aio_many(jobs: int) -> None:
    for first in range(0, jobs, CHUNK):
        await aio.enqueue_many(
            TASK, [{"args": [n]} for n in range(first, min(jobs, first + CHUNK))]
        )


def measure(url: str, jobs: int, tasks: int, rounds: int = 2) -> list[dict]:
    """The five rates on the database at ``url``, each the best of ``rounds`` (the rounds
    interleave, so a noisy moment on a shared machine hurts one run, not one kind)."""
    best: dict[str, dict] = {}

    def fresh() -> None:
        stop_runner()
        store.reset()
        db = store.use_database(url)
        db.execute_sql("DELETE FROM jobs")

    def record(name: str, seconds: float, ticker: LagTicker | None = None) -> None:
        row = {"name": name, "rate": jobs / seconds,
               "lag_ms": None if ticker is None else ticker.worst_ms,
               "loop_lag_ms": None if ticker is None else ticker.worst_loop_ms}  # fmt: skip
        seen = best.get(name)
        if seen is None or row["rate"] > seen["rate"]:
            best[name] = row
        if seen is not None and row["lag_ms"] is not None:  # lags: the worst of the rounds
            best[name]["lag_ms"] = max(row["lag_ms"], seen["lag_ms"])
            best[name]["loop_lag_ms"] = max(row["loop_lag_ms"], seen["loop_lag_ms"])

    fresh()
    jobtui.enqueue(TASK)  # warm up: schema, catalog, connection
    for _ in range(rounds):
        fresh()
        record("sync enqueue", _sync_enqueue(jobs))
        fresh()
        record("aio enqueue, sequential", *asyncio.run(_ticking(lambda: _aio_sequential(jobs))))
        fresh()
        record(f"aio enqueue, {tasks} tasks",
               *asyncio.run(_ticking(lambda: _aio_concurrent(jobs, tasks))))  # fmt: skip
        fresh()
        record("sync enqueue_many", _sync_many(jobs))
        fresh()
        record("aio enqueue_many", *asyncio.run(_ticking(lambda: _aio_many(jobs))))
    stop_runner()
    store.reset()
    rows = list(best.values())
    base = rows[0]["rate"]
    for row in rows:
        row["ratio"] = row["rate"] / base
    return rows


def _postgres_database(admin_url: str) -> tuple[str, Callable[[], None]] | None:
    try:
        import psycopg2

        admin = psycopg2.connect(admin_url, connect_timeout=3)
    except Exception as exc:  # noqa: BLE001 - no server: the run says so and goes on
        print(f"PostgreSQL skipped ({admin_url}): {str(exc).strip()}")
        return None
    admin.autocommit = True
    name = f"jobtui_bench_aio_{uuid.uuid4().hex[:8]}"
    with admin.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')

    def drop() -> None:
        with admin.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()

    return admin_url.rsplit("/", 1)[0] + "/" + name, drop


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--postgres", default=PG_DEFAULT, help="an admin URL ('' to skip)")
    parser.add_argument("--rounds", type=int, default=2, help="best of this many runs each")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    results: dict[str, list[dict]] = {}
    with tempfile.TemporaryDirectory() as folder:
        results["sqlite"] = measure(
            f"sqlite:///{folder}/bench.db", args.jobs, args.concurrency, args.rounds
        )
    pg = _postgres_database(args.postgres) if args.postgres else None
    if pg is not None:
        url, drop = pg
        try:
            results["postgresql"] = measure(url, args.jobs, args.concurrency, args.rounds)
        finally:
            store.reset()
            drop()
    if args.json:
        print(json.dumps(results, indent=2))
        return
    for engine, rows in results.items():
        print(f"{engine} ({args.jobs} jobs, {os.environ.get('JOBTUI_AIO_THREADS') or 4} threads)")
        for row in rows:
            lag = (
                ""
                if row["lag_ms"] is None
                else (
                    f"   ticker worst lag {row['lag_ms']:5.1f} ms"
                    f" ({row['loop_lag_ms']:4.1f} ms without waits for a CPU)"
                )
            )
            print(f"  {row['name']:<28} {row['rate']:8.0f} jobs/s  {row['ratio']:5.2f}x{lag}")


if __name__ == "__main__":
    main()
