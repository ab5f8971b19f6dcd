"""pgqueuer's worker for bench/peers.py: one no-op entrypoint on its asyncpg driver, run
with its default settings through ``pgqueuer.run`` (what ``pgq run`` calls; the CLI
itself fails to parse its own default ``--log-level`` with this environment's typer).

    python -m bench.pgqueuer_app      (BENCH_PG_URL names the database)
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator

import asyncpg
import pgqueuer
from pgqueuer import Job, PgQueuer


@contextlib.asynccontextmanager
async def main() -> AsyncIterator[PgQueuer]:
    """The factory ``pgq run`` takes: an async context manager yielding the PgQueuer."""
    connection = await asyncpg.connect(os.environ["BENCH_PG_URL"])
    pgq = PgQueuer.from_asyncpg_connection(connection)

    @pgq.entrypoint("bench.noop")
    async def noop(job: Job) -> None:
        return None

    try:
        yield pgq
    finally:
        await connection.close()


if __name__ == "__main__":
    asyncio.run(pgqueuer.run(main))  # SIGINT/SIGTERM stop it
