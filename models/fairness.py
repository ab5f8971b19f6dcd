"""Fairness across tenants: jobs with different ``fair_key``s share a queue round-robin.

Without it one tenant's 100,000-job backlog holds every other tenant's jobs behind it
(the claim takes the queue in priority, due time, FIFO order). With ``fair_key=`` a job
joins its key's own line: each claim serves the least recently served keys first, one job
of each per round, so a tenant's 10 jobs start among the next few dozen starts however
long another tenant's backlog is. Priority still orders the jobs of one key.

The claim stays an index walk, never a scan of the backlog:

- ``fair_keys`` holds one row per (queue, key) with claimable jobs and the turn it was
  last served (``last_served``, a number that only grows). An enqueue with a fair key
  adds its row; the claim stamps the keys it served; the upkeep (``tidy_fair_keys``)
  forgets keys with nothing claimable and adds back any that a retry, a requeue or a
  rehomed queue left out (a loose index scan of the keys: one seek per key).
- Fair-keyed jobs live in their own partial index ``jobs_fair_claim`` (queue, key,
  priority, due, id) and are left out of the two claim indexes (``fair_key IS NULL``),
  so the ordinary claim never walks past them. Each key's head is one seek.
- A claim asks ``fair_keys`` for the least recently served keys of its queues, takes up
  to ``ceil(n / keys)`` jobs of each in one statement (one arm per key), orders them
  round-robin and claims the first ones. The jobs without a key count as one more key:
  they get their share through the ordinary claim.

While ``fair_keys`` is empty (no fair-keyed job is claimable) the claim is exactly the
one it was: the supervisor asks ``any_fair`` once per poll interval.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence

import peewee

from .base import BaseModel
from .dialect import CLAIM_COLUMNS, Dialect, dialect_for

TYPE_CHECKING = False  # typing stays unimported at run time (module memory)
if TYPE_CHECKING:
    from typing import Any

#: The longest a fair key may be (like unique_key).
FAIR_KEY_MAX = 200
#: Keys one claim asks for per round (each is one arm of the statement): as many as the
#: jobs it wants (more rounds when some have nothing due), at least MIN_KEYS, at most
#: MAX_KEYS.
MIN_KEYS, MAX_KEYS = 4, 64
#: Rounds of keys one claim looks through before it settles for what it found (a round
#: whose keys had all drained, and are forgotten, does not count).
MAX_ROUNDS = 4
#: Index names (created by models/job.py and by the schema step that adds them).
FAIR_INDEX = "jobs_fair_claim"


class FairKey(BaseModel):
    """One (queue, fair key) with claimable jobs, and when it was last served."""

    queue_name = peewee.CharField(max_length=100)
    fair_key = peewee.CharField(max_length=FAIR_KEY_MAX)
    last_served = peewee.BigIntegerField(default=0)  # a turn number: higher is more recent

    class Meta:
        table_name = "fair_keys"
        primary_key = peewee.CompositeKey("queue_name", "fair_key")
        indexes = ((("last_served",), False),)


_ANY = "SELECT 1 FROM fair_keys LIMIT 1"

_KEYS_ALL = """SELECT queue_name, fair_key FROM fair_keys
ORDER BY last_served, queue_name, fair_key LIMIT :limit OFFSET :offset"""
_KEYS_OF = """SELECT queue_name, fair_key FROM fair_keys WHERE queue_name IN ({names})
ORDER BY last_served, queue_name, fair_key LIMIT :limit OFFSET :offset"""

# Each key's head jobs through jobs_fair_claim, in claim order: SQLite, one arm per key;
# PostgreSQL, a LATERAL subquery per key (FOR UPDATE is not allowed in a UNION).
_ARM_SQLITE = """SELECT * FROM (SELECT id, {n} AS k, priority, run_at, queue_name FROM jobs
    INDEXED BY jobs_fair_claim WHERE queue_name = :q{n} AND fair_key = :k{n}
    AND fair_key IS NOT NULL AND {filter} ORDER BY priority DESC, run_at, id
    LIMIT :per OFFSET :skip)"""
_LATERAL_POSTGRES = """SELECT c.id, keys.n, c.priority, c.run_at, c.queue_name
FROM (VALUES {values}) AS keys(n, q, f) CROSS JOIN LATERAL (
    SELECT id, priority, run_at, queue_name FROM jobs
    WHERE queue_name = keys.q AND fair_key = keys.f AND fair_key IS NOT NULL AND {filter}
    ORDER BY priority DESC, run_at, id LIMIT :per OFFSET :skip
    FOR UPDATE SKIP LOCKED) AS c"""
_FILTER = """status IN ('pending', 'retrying') AND run_at <= :now
    AND (next_retry_at IS NULL OR next_retry_at <= :now)
    AND (deadline IS NULL OR deadline > :now)
    AND {tasks}
    AND queue_name NOT IN (SELECT name FROM queues WHERE paused)
    AND (NOT :bound OR (rate_key IS NULL AND concurrency_key IS NULL
        AND ('queue:' || queue_name) NOT IN (SELECT name FROM rates WHERE max_starts IS NOT NULL)
        AND ('task:' || job_type) NOT IN (SELECT name FROM rates WHERE max_starts IS NOT NULL)))"""
_TASKS = {
    "sqlite": "(:tasks IS NULL OR job_type IN (SELECT value FROM json_each(:tasks)))",
    "postgresql": "(:tasks::text[] IS NULL OR (job_type || '') = ANY(:tasks::text[]))",
}
_TAKE = {
    "sqlite": """UPDATE jobs SET {set_running}
WHERE id IN (SELECT value FROM json_each(:ids)) AND status IN ('pending', 'retrying')
RETURNING {returning}""",
    "postgresql": """UPDATE jobs SET {set_running}
FROM (SELECT unnest(:ids::text[]) AS id) AS taken
WHERE jobs.id = taken.id AND jobs.status IN ('pending', 'retrying')
RETURNING {returning}""",
}
# Keys that had their turn, in one statement: each gets the newest turn + its place.
_STAMP = {
    "sqlite": """UPDATE fair_keys SET last_served = turns.base + turns.place
FROM (SELECT (SELECT COALESCE(MAX(last_served), 0) FROM fair_keys) AS base,
             json_extract(value, '$[0]') AS q, json_extract(value, '$[1]') AS f,
             json_extract(value, '$[2]') AS place
      FROM json_each(:stamps)) AS turns
WHERE fair_keys.queue_name = turns.q AND fair_keys.fair_key = turns.f""",
    "postgresql": """UPDATE fair_keys SET last_served = turns.base + turns.place
FROM (SELECT (SELECT COALESCE(MAX(last_served), 0) FROM fair_keys) AS base, q, f, place
      FROM unnest(:queues::text[], :keys::text[], :places::bigint[]) AS t(q, f, place)
     ) AS turns
WHERE fair_keys.queue_name = turns.q AND fair_keys.fair_key = turns.f""",
}
_ADD = {
    "sqlite": "INSERT INTO fair_keys (queue_name, fair_key, last_served) "
    "VALUES (:queue, :key, 0) ON CONFLICT DO NOTHING",
    "postgresql": "INSERT INTO fair_keys (queue_name, fair_key, last_served) "
    "VALUES (:queue, :key, 0) ON CONFLICT DO NOTHING",
}
# Keys with nothing claimable left (each a seek into jobs_fair_claim) are forgotten.
_FORGET = """DELETE FROM fair_keys WHERE NOT EXISTS (
    SELECT 1 FROM jobs WHERE jobs.queue_name = fair_keys.queue_name
    AND jobs.fair_key = fair_keys.fair_key AND jobs.fair_key IS NOT NULL
    AND jobs.status IN ('pending', 'retrying'))"""
# Every (queue, key) with claimable jobs, by a loose scan of jobs_fair_claim: one seek per
# key (the next key of this queue, else the first key of the next queue), whatever the
# backlog. (A recursive CTE with a row comparison made SQLite read a queue's whole backlog.)
_NEXT_IN_QUEUE = """SELECT fair_key FROM jobs WHERE queue_name = :q AND fair_key > :f
    AND fair_key IS NOT NULL AND status IN ('pending', 'retrying')
    ORDER BY queue_name, fair_key LIMIT 1"""
_NEXT_QUEUE = """SELECT queue_name, fair_key FROM jobs WHERE queue_name > :q
    AND fair_key IS NOT NULL AND status IN ('pending', 'retrying')
    ORDER BY queue_name, fair_key LIMIT 1"""
# PostgreSQL: the same walk in one statement (a round trip per key cost 260 ms for 100 keys
# on a loaded server); its row comparison bounds the index scan of each step.
_ALL_KEYS_POSTGRES = """WITH RECURSIVE k(q, f) AS (
    (SELECT queue_name, fair_key FROM jobs
     WHERE status IN ('pending', 'retrying') AND fair_key IS NOT NULL
     ORDER BY queue_name, fair_key LIMIT 1)
    UNION ALL
    SELECT nxt.queue_name, nxt.fair_key FROM k CROSS JOIN LATERAL (
        SELECT queue_name, fair_key FROM jobs WHERE status IN ('pending', 'retrying')
        AND fair_key IS NOT NULL AND (queue_name, fair_key) > (k.q, k.f)
        ORDER BY queue_name, fair_key LIMIT 1) AS nxt)
SELECT q, f FROM k"""
_KNOWN = "SELECT queue_name, fair_key FROM fair_keys"


def any_fair(db: peewee.Database) -> bool:
    """Whether some fair-keyed job may be claimable (the supervisor asks once per poll
    interval; an empty table costs one probe)."""
    return db.execute_sql(_ANY).fetchone() is not None


def fair_key_counts(db: peewee.Database) -> dict[str, int]:
    """Per queue, how many fair keys have claimable jobs (status and the console)."""
    rows = db.execute_sql("SELECT queue_name, COUNT(*) FROM fair_keys GROUP BY queue_name")
    return {queue: int(count) for queue, count in rows.fetchall()}


def check_fair_key(value: Any) -> str | None:
    """A job's fair key as stored, or ValueError saying why it cannot be one."""
    if value is None:
        return None
    if not isinstance(value, str | int) or isinstance(value, bool):
        raise ValueError(f"fair_key must be a string, got {value!r}")
    value = str(value)
    if not value:
        raise ValueError("fair_key must not be empty (leave it out for no key)")
    if len(value) > FAIR_KEY_MAX:
        raise ValueError(f"fair_key is longer than {FAIR_KEY_MAX} characters")
    return value


def add_fair_keys(db: peewee.Database, rows: Sequence[dict[str, Any]]) -> None:
    """Give each fair key among these new job rows its row in ``fair_keys`` (in the
    enqueue's transaction, so the claim finds the key as soon as its job is visible)."""
    pairs = sorted({(r["queue_name"], r["fair_key"]) for r in rows if r.get("fair_key")})
    if not pairs:
        return
    dialect = dialect_for(db)
    sql = dialect.sql(_ADD[dialect.name])
    for queue, key in pairs:
        db.execute_sql(sql, {"queue": queue, "key": key})


def tidy_fair_keys(db: peewee.Database) -> tuple[int, int]:
    """Forget keys with nothing claimable; add back keys with claimable jobs and no row
    (a retry by hand, a requeue, a job moved to its task's queue). Returns (forgotten,
    added). The caller holds a write transaction. With no fair-keyed job this is two
    probes of empty indexes."""
    dialect = dialect_for(db)
    forgotten = db.execute_sql(_FORGET).rowcount or 0
    claimable = _claimable_keys(db, dialect)
    if not claimable:
        return forgotten, 0
    known = set(db.execute_sql(_KNOWN).fetchall())
    missing = [(q, k) for q, k in claimable if (q, k) not in known]
    sql = dialect.sql(_ADD[dialect.name])
    for queue, key in missing:
        db.execute_sql(sql, {"queue": queue, "key": key})
    return forgotten, len(missing)


def _claimable_keys(db: peewee.Database, dialect: Dialect) -> list[tuple[str, str]]:
    """Every (queue, key) with claimable jobs, one index seek each."""
    if dialect.name == "postgresql":
        return [tuple(row) for row in db.execute_sql(_ALL_KEYS_POSTGRES).fetchall()]
    in_queue, next_queue = dialect.sql(_NEXT_IN_QUEUE), dialect.sql(_NEXT_QUEUE)
    found: list[tuple[str, str]] = []
    row = db.execute_sql(next_queue, {"q": ""}).fetchone()
    while row is not None:
        queue, key = row
        found.append((queue, key))
        nxt = db.execute_sql(in_queue, {"q": queue, "f": key}).fetchone()
        row = (queue, nxt[0]) if nxt is not None else db.execute_sql(
            next_queue, {"q": queue}).fetchone()  # fmt: skip
    return found


def _arms(dialect: Dialect, count: int) -> str:
    key = (dialect.name, count)
    found = _ARMS_CACHE.get(key)
    if found is None:
        where = _FILTER.format(tasks=_TASKS[dialect.name])
        if dialect.name == "sqlite":
            arms = [_ARM_SQLITE.format(n=n, filter=where) for n in range(count)]
            sql = " UNION ALL ".join(arms)
        else:
            values = ", ".join(f"({n}, :q{n}, :k{n})" for n in range(count))
            sql = _LATERAL_POSTGRES.format(values=values, filter=where)
        found = _ARMS_CACHE[key] = dialect.sql(sql)
    return found


_ARMS_CACHE: dict[tuple[str, int], str] = {}


def _keys(
    db: peewee.Database, dialect: Dialect, queues: Sequence[str] | None, offset: int, count: int
) -> list[tuple[str, str]]:
    params: dict[str, Any] = {"limit": count, "offset": offset}
    if queues is None:
        sql = _KEYS_ALL
    else:
        names = ", ".join(f":n{i}" for i in range(len(queues)))
        sql = _KEYS_OF.format(names=names)
        params.update({f"n{i}": name for i, name in enumerate(queues)})
    return [tuple(row) for row in db.execute_sql(dialect.sql(sql), params).fetchall()]


def _heads(
    db: peewee.Database,
    dialect: Dialect,
    keys: Sequence[tuple[str, str]],
    params: dict[str, Any],
    per: int,
    skip: int,
) -> list[tuple]:
    """Up to ``per`` head jobs of each key (after ``skip``): (id, key number, priority,
    run_at, queue)."""
    values = {"now": params["now"], "tasks": params["tasks"], "per": per, "skip": skip,
              "bound": bool(params.get("bound"))}  # fmt: skip
    for n, (queue, key) in enumerate(keys):
        values[f"q{n}"], values[f"k{n}"] = queue, key
    return db.execute_sql(_arms(dialect, len(keys)), values).fetchall()


def fair_candidates(
    db: peewee.Database,
    dialect: Dialect,
    want: int,
    params: dict[str, Any],
    queues: Sequence[str] | None,
) -> tuple[list[tuple[str, str]], list[tuple], set[int]]:
    """The keys looked at, least recently served first; up to ``want`` of their due jobs
    in round-robin order: (id, index of its key in the first list, priority, run_at,
    queue) each; and the keys (indexes) that have due jobs."""
    looked: list[tuple[str, str]] = []
    by_key: dict[int, list[tuple]] = {}
    per_round = min(MAX_KEYS, max(MIN_KEYS, want))
    offset, rounds = 0, MAX_ROUNDS
    while rounds > 0:
        rounds -= 1
        keys = _keys(db, dialect, queues, offset, per_round)
        if not keys:
            break
        base = len(looked)
        looked += keys
        per = max(1, math.ceil(want / len(keys)))
        for row in _heads(db, dialect, keys, params, per, 0):
            by_key.setdefault(base + int(row[1]), []).append(row)
        found = sum(len(v) for v in by_key.values())
        full = [n for n in range(base, len(looked)) if len(by_key.get(n, ())) == per]
        if found < want and full:  # some keys ran short: the others give more
            more = _heads(db, dialect, [looked[n] for n in full], params, want - found, per)
            for row in more:
                by_key[full[int(row[1])]].append(row)
            found = sum(len(v) for v in by_key.values())
        if found >= want or len(keys) < per_round:
            break
        # keys with nothing claimable at all are forgotten now (they would stand before
        # the others at every claim); the rest of this round's keys stay in the order
        empty = [looked[n] for n in range(base, len(looked)) if n not in by_key]
        forgotten = _forget(db, dialect, empty)
        offset += len(keys) - forgotten
        if forgotten == len(keys):
            rounds += 1  # a round of drained keys, all gone for good: not counted
    ordered: list[tuple] = []
    depth = 0
    while len(ordered) < want:
        layer = [(n, by_key[n][depth]) for n in sorted(by_key) if len(by_key[n]) > depth]
        if not layer:
            break
        ordered += [(row[0], n, row[2], row[3], row[4]) for n, row in layer]
        depth += 1
    return looked, ordered[:want], set(by_key)


def claim_fair(
    db: peewee.Database,
    dialect: Dialect,
    limit: int,
    params: dict[str, Any],
    queues: Sequence[str] | None,
    limits: bool,
    claim_rest: Callable[[int], list[tuple]],
    bound: bool = False,
) -> list[tuple]:
    """The claim while fair keys exist: up to ``limit`` jobs, keyed ones round-robin
    across their keys, the unkeyed ones (``claim_rest(n)``, the ordinary claim) as one
    more key. Returns the claimed rows (dialect.CLAIM_COLUMNS).

    ``bound``: rates or key limits exist (flow.py). Then a fair-keyed job that one of
    them may apply to (a rate or concurrency key, a rated queue or task) is left to
    ``claim_rest`` (flow.py's walk, which judges the limits and serves such jobs in
    priority order): a limit always wins over round-robin."""
    params = {**params, "bound": bound}
    looked, candidates, due = fair_candidates(db, dialect, limit, params, queues)
    if not candidates:
        _stamp(db, dialect, looked, due, [])
        return claim_rest(limit)
    keys_with_jobs = len({c[1] for c in candidates})
    rest = claim_rest(max(limit - len(candidates), math.ceil(limit / (keys_with_jobs + 1))))
    want = limit - len(rest)
    taken = candidates[:want]
    if taken and limits:
        taken = _within_rooms(db, dialect, taken, queues)
    rows: list[tuple] = []
    if taken:
        sql = dialect.sql(_TAKE[dialect.name].format(set_running=dialect.set_running,
                                                     returning=dialect.returning))  # fmt: skip
        values = {**params, "ids": dialect.list_param([c[0] for c in taken])}
        rows = db.execute_sql(sql, values).fetchall()
    _stamp(db, dialect, looked, due, taken)
    return _round_robin(taken, rows, rest)


_PRIORITY, _RUN_AT = CLAIM_COLUMNS.index("priority"), CLAIM_COLUMNS.index("run_at")


def _round_robin(taken: list[tuple], rows: list[tuple], rest: list[tuple]) -> list[tuple]:
    """The claimed rows in the order they are to start: round by round, each key's next
    job in the order the keys were served, the unkeyed jobs (``rest``, in their own claim
    order) as the last key of each round. (RETURNING keeps no order, and the supervisor's
    ready buffer starts jobs in the order the claim gives them.)"""
    place: dict[str, tuple[int, int]] = {}
    depth: dict[int, int] = {}
    for position, candidate in enumerate(taken):
        key = candidate[1]
        place[candidate[0]] = (depth.get(key, 0), position)
        depth[key] = depth.get(key, 0) + 1
    rest = sorted(rest, key=lambda r: (-r[_PRIORITY], r[_RUN_AT], r[0]))
    order = [(place[row[0]], row) for row in rows]
    order += [((depth_, len(taken)), row) for depth_, row in enumerate(rest)]
    order.sort(key=lambda entry: entry[0])
    return [row for _, row in order]


def _forget(db: peewee.Database, dialect: Dialect, keys: Sequence[tuple[str, str]]) -> int:
    """Delete the rows of these keys that have no claimable job left; returns how many.
    (A job enqueued for one meanwhile, not yet committed, finds its key again through the
    upkeep's walk within FAIR_TIDY_INTERVAL_S.)"""
    if not keys:
        return 0
    pairs = " OR ".join(f"(queue_name = :q{n} AND fair_key = :k{n})" for n in range(len(keys)))
    values: dict[str, Any] = {}
    for n, (queue, key) in enumerate(keys):
        values[f"q{n}"], values[f"k{n}"] = queue, key
    sql = dialect.sql(f"{_FORGET} AND ({pairs})")
    return db.execute_sql(sql, values).rowcount or 0


def _within_rooms(
    db: peewee.Database, dialect: Dialect, taken: list[tuple], queues: Sequence[str] | None
) -> list[tuple]:
    """Drop candidates of limited queues beyond their room (limits.py), counted after the
    ordinary claim of this transaction."""
    from .limits import rooms

    limited = db.execute_sql("SELECT name FROM queues WHERE concurrency IS NOT NULL").fetchall()
    if not limited:
        return taken
    names = {row[0] for row in limited}
    room = dict(rooms(db, dialect, queues))
    out = []
    for row in taken:
        queue = row[4]
        if queue in names:
            if room.get(queue, 0) <= 0:
                continue
            room[queue] -= 1
        out.append(row)
    return out


def _stamp(
    db: peewee.Database,
    dialect: Dialect,
    looked: list[tuple[str, str]],
    due: set[int],
    taken: list[tuple],
) -> None:
    """Keys that had their turn move to the back of the line: those served, in the order
    they were served, after those looked at with nothing due. Keys with due jobs this claim
    had no room for keep their place. Rows are written in key order (PostgreSQL: two
    claims lock them in one order, no deadlock)."""
    if not looked:
        return
    served: list[int] = []
    for row in taken:
        if row[1] not in served:
            served.append(row[1])
    order = [n for n in range(len(looked)) if n not in due] + served
    if not order:
        return
    stamps = sorted((*looked[n], place) for place, n in enumerate(order, start=1))
    sql = dialect.sql(_STAMP[dialect.name])
    if dialect.name == "sqlite":
        params: dict[str, Any] = {"stamps": json.dumps(stamps)}
    else:
        params = {"queues": [q for q, _, _ in stamps], "keys": [f for _, f, _ in stamps],
                  "places": [p for _, _, p in stamps]}  # fmt: skip
    db.execute_sql(sql, params)
