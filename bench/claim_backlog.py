"""The claim's cost behind a backlog of 1,000,000 pending jobs, with fair keys off and on
(issue 14, item 3): the claim must stay an index walk, whatever the backlog.

    python -m bench.store --claim-backlog 1000000 [--engine sqlite|postgresql|both]

For each engine two fresh databases get the backlog in one INSERT … SELECT: one without
fair keys, one where tenant "A" holds 99 % of it and 100 other keys share the rest. Then
``claim_jobs(10)`` runs ``--claims`` times, each in its own transaction, and the median
and 95th percentile of a claim are reported, with the upkeep's tidy of the fair keys (a
loose index scan) and the plans (EXPLAIN) of the statements: each walks an index
(jobs_claim_order, jobs_claim_queue or jobs_fair_claim), none sorts or scans the backlog.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time

from jobtui.models import store
from jobtui.models.claims import claim_jobs
from jobtui.models.clock import sql_timestamp, utcnow
from jobtui.models.dialect import dialect_for

_COLUMNS = ("id, job_type, status, parameters, priority, queue_name, created_at, updated_at, "
            "run_at, attempt, max_retries, retry_count, progress_percentage, cancel_requested, "
            "error_permanent, has_dependants, unset_options, fair_key")  # fmt: skip
# (no % operator: it is the PostgreSQL driver's parameter mark)
_KEY = (
    "CASE WHEN {n} - ({n} / 100) * 100 = 0 THEN 'k' || ({n} - ({n} / 10000) * 10000) ELSE 'A' END"
)
_FILL = {
    "sqlite": """INSERT INTO jobs ({columns})
WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c WHERE n < :count)
SELECT printf('%036d', n), 'bench.noop', 'pending', '{{"args":[],"kwargs":{{}}}}', 0,
    'default', :stamp, :stamp, :stamp, 0, 3, 0, 0, 0, 0, 0, 0, {key} FROM c""",
    "postgresql": """INSERT INTO jobs ({columns})
SELECT lpad(n::text, 36, '0'), 'bench.noop', 'pending', '{{"args":[],"kwargs":{{}}}}', 0,
    'default', :stamp, :stamp, :stamp, 0, 3, 0, 0, false, false, false, 0, {key}
FROM generate_series(1, :count) AS n""",
}


def _fill(db, count: int, fair: bool) -> float:
    dialect = dialect_for(db)
    key = _KEY.format(n="n") if fair else "NULL"
    sql = dialect.sql(_FILL[dialect.name].format(columns=_COLUMNS, key=key))
    began = time.perf_counter()
    with db.atomic():
        db.execute_sql(sql, {"count": count, "stamp": sql_timestamp(utcnow())})
    db.execute_sql("ANALYZE" if dialect.name == "sqlite" else "ANALYZE jobs")
    return time.perf_counter() - began


def _plans(db, fair: bool) -> list[str]:
    """The plans of the claim's statements, one line per step."""
    from jobtui.models.fairness import _arms

    dialect = dialect_for(db)
    now = sql_timestamp(utcnow())
    explain = "EXPLAIN QUERY PLAN " if dialect.name == "sqlite" else "EXPLAIN "
    out = []
    if fair:
        params = {"now": now, "tasks": None, "per": 5, "skip": 0, "q0": "default", "k0": "A",
                  "q1": "default", "k1": "k100"}  # fmt: skip
        rows = db.execute_sql(explain + _arms(dialect, 2), {**params, "bound": False}).fetchall()
    else:
        body = dialect.claim_statement(None)
        body = body.split(";\n", 1)[1] if ";\n" in body else body
        params = {"now": now, "tasks": None, "limit": 10, "worker_name": None,
                  "supervisor_name": None, "queues": None, "capped": False}  # fmt: skip
        with db.atomic() as txn:
            rows = db.execute_sql(explain + body, params).fetchall()
            txn.rollback()
    for row in rows:
        out.append(str(row[-1]))
    return out


def _claims(count: int) -> list[float]:
    times = []
    for _ in range(count):
        began = time.perf_counter()
        claimed = claim_jobs(10)
        times.append(time.perf_counter() - began)
        assert len(claimed) == 10, len(claimed)
    return times


def measure(url: str, backlog: int, claims: int, fair: bool) -> dict:
    store.reset()
    db = store.use_database(url)
    filled = _fill(db, backlog, fair)
    tidy_s = None
    if fair:
        from jobtui.models.fairness import tidy_fair_keys

        began = time.perf_counter()
        with dialect_for(db).write_transaction(db):
            tidy_fair_keys(db)
        tidy_s = time.perf_counter() - began
    plans = _plans(db, fair)
    _claims(5)  # warm
    times = _claims(claims)
    times.sort()
    store.reset()
    return {
        "fair_keys": fair, "backlog": backlog, "fill_s": round(filled, 1),
        "claim_median_ms": round(statistics.median(times) * 1000, 3),
        "claim_p95_ms": round(times[int(len(times) * 0.95) - 1] * 1000, 3),
        "tidy_ms": None if tidy_s is None else round(tidy_s * 1000, 1), "plan": plans,
    }  # fmt: skip


def run(engines: list[str], backlog: int, claims: int, pg_admin: str) -> list[dict]:
    """Both settings on each engine; one fresh database per measurement."""
    results = []
    for engine in engines:
        for fair in (False, True):
            if engine == "sqlite":
                with tempfile.TemporaryDirectory(prefix="jobtui-claim-backlog-") as folder:
                    url = f"sqlite:///{os.path.join(folder, 'jobs.db')}"
                    result = measure(url, backlog, claims, fair)
            else:
                from bench.store import _pg_database

                url, drop = _pg_database(pg_admin)
                try:
                    result = measure(url, backlog, claims, fair)
                finally:
                    drop()
            results.append({"engine": engine, **result})
    return results


def report(results: list[dict]) -> None:
    for r in results:
        print(f"{r['engine']:<10} fair keys {'on ' if r['fair_keys'] else 'off'}  backlog "
              f"{r['backlog']:,}  claim of 10: median {r['claim_median_ms']} ms, p95 "
              f"{r['claim_p95_ms']} ms" + (f"  (tidy {r['tidy_ms']} ms)" if r["tidy_ms"]
                                           else ""))  # fmt: skip
        for line in r["plan"]:
            print(f"    {line}")
