"""The claim while rates or key limits exist: their jobs are claimed apart, within what
each allows now, in the claim's transaction; every other job through the usual claim.

``claim_in_transaction`` (claims.py) hands over here only when ``any_flow`` found a rate
or a key limit (the supervisor asks once per poll interval, as for queue limits): with
none, the claim statement is the default one, untouched.

A job is *bound* when a rate applies to it (its queue's, its task's, its ``rate_key``'s)
or it has a ``concurrency_key``. The claim:

1. reads the rates and key limits, locked for this transaction on PostgreSQL (``FOR
   UPDATE SKIP LOCKED``: a row another supervisor is claiming with right now is skipped
   this turn and tried again shortly, never waited for, so a stopped supervisor holding
   it stalls nobody's heartbeats) — SQLite's write lock serialises claims already — and
   the database's clock, on which the rates are judged;
2. reads the due bound jobs by arms (the keyed jobs on their partial index, each rated
   queue on its claim index, each rated task while its rate has a start left: never the
   backlog no limit applies to), leaving out in SQL the scopes with nothing left (an
   exhausted rate, a full key), merges them in claim order and takes each job whose every
   rate has a start left and whose key has room, up to the supervisor's free slots;
3. writes the rates' spent starts, then claims the unbound jobs with what is left
   (limited queues first, as claims.py does).

It returns when the earliest held-back scope is free again: the supervisor claims then
(a timer), so a job held back by a rate waits without spinning the loop.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import peewee

from .dialect import CLAIM_QUEUE_INDEX, Dialect
from .job import KEYED_INDEX, KEYED_INDEX_WHERE
from .key_limits import KeyRules, running_per_key
from .limits import rooms
from .rates import Window
from .staging import NOT_STAGED

TYPE_CHECKING = False  # typing stays unimported at run time (module memory)
if TYPE_CHECKING:
    from typing import Any

#: A rate or key-limit row another supervisor holds (PostgreSQL): try again this soon.
LOCKED_RETRY_S = 0.05
#: Rounds of the bound walk when jobs were passed over (a key full under its task's limit).
WALK_ROUNDS = 4

_ANY_FLOW = """SELECT 1 FROM rates WHERE max_starts IS NOT NULL
UNION ALL SELECT 1 FROM key_limits WHERE max_running IS NOT NULL LIMIT 1"""
_RATES = "SELECT name, max_starts, period_s, state FROM rates WHERE max_starts IS NOT NULL"
_KEY_LIMITS = "SELECT scope, max_running FROM key_limits WHERE max_running IS NOT NULL"
_PG_CLOCK = "SELECT extract(epoch FROM clock_timestamp())"
_LIMITED = "SELECT name FROM queues WHERE concurrency IS NOT NULL"
_SPEND = "UPDATE rates SET state = :state WHERE name = :name"
EPOCH = datetime(1970, 1, 1)

_LISTS = {
    "sqlite": "(SELECT value FROM json_each(:{0}))",
    "postgresql": "ANY(:{0}::text[])",
}

# The due bound jobs, one arm per kind: the keyed jobs (on their own index, job.py), and
# the jobs of each rated queue (its claim index) and of each rated task, only while that
# rate has a start left. No arm walks the backlog of jobs no limit applies to.
_ARM = """SELECT id, queue_name, job_type, rate_key, concurrency_key, priority, run_at
FROM jobs{hint}
WHERE {arm}
  AND run_at <= :now AND (next_retry_at IS NULL OR next_retry_at <= :now)
  AND (deadline IS NULL OR deadline > :now)
  AND (:tasks{cast} IS NULL OR job_type {in_tasks})
  AND (:served{cast} IS NULL OR queue_name {in_served})
  AND queue_name NOT IN (SELECT name FROM queues WHERE paused)
  AND NOT (queue_name {in_x_queues}) AND NOT (job_type {in_x_tasks})
  AND (rate_key IS NULL OR NOT (rate_key {in_x_rkeys}))
  AND (concurrency_key IS NULL OR (NOT :no_ckeys AND NOT (concurrency_key {in_x_ckeys})))
  AND NOT (id {in_seen})
ORDER BY priority DESC, run_at, id
LIMIT :batch"""

_ARMS = {
    "keyed": (KEYED_INDEX_WHERE, KEYED_INDEX),
    # a rated queue's jobs: those without a fair key on its claim index, and its
    # fair-keyed ones (fairness.py leaves jobs under a limit to this walk) on theirs
    "queue": (
        "queue_name = :arm AND status IN ('pending', 'retrying') AND fair_key IS NULL"
        f" AND {NOT_STAGED}",
        CLAIM_QUEUE_INDEX,
    ),
    "queue_fair": (
        "queue_name = :arm AND status IN ('pending', 'retrying') AND fair_key IS NOT NULL",
        "jobs_fair_claim",
    ),
    "task": (f"job_type = :arm AND {NOT_STAGED} AND status IN ('pending', 'retrying')", None),
}

_TAKE = {
    "sqlite": """UPDATE jobs SET {set_running}
WHERE id IN (SELECT value FROM json_each(:ids)) AND status IN ('pending', 'retrying')
RETURNING {returning}""",
    "postgresql": """UPDATE jobs SET {set_running}
WHERE jobs.id = ANY(:ids::text[]) AND jobs.status IN ('pending', 'retrying')
RETURNING {returning}""",
}

_SQL_CACHE: dict[tuple[str, str], str] = {}


def any_flow(db: peewee.Database) -> bool:
    """Whether some rate or key limit exists (asked once per poll interval)."""
    return db.execute_sql(_ANY_FLOW).fetchone() is not None


def _sql(dialect: Dialect, which: str) -> str:
    key = (dialect.name, which)
    found = _SQL_CACHE.get(key)
    if found is None:
        if which in _ARMS:
            pattern = _LISTS[dialect.name]
            names = ("tasks", "served", "x_queues", "x_tasks", "x_rkeys", "x_ckeys", "seen")
            lists = {f"in_{n}": ("= " if dialect.name != "sqlite" else "IN ") + pattern.format(n)
                     for n in names}  # fmt: skip
            arm, index = _ARMS[which]
            sqlite = dialect.name == "sqlite"
            hint = f" INDEXED BY {index}" if sqlite and index else ""
            text = _ARM.format(cast="" if sqlite else "::text[]", arm=arm, hint=hint, **lists)
            if not sqlite:
                text += " FOR UPDATE SKIP LOCKED"
        else:
            text = _TAKE[dialect.name].format(set_running=dialect.set_running,
                                              returning=dialect.returning)  # fmt: skip
        found = _SQL_CACHE[key] = dialect.sql(text)
    return found


@dataclass
class FlowState:
    """The rates and key limits of one claim, as read (and locked) in its transaction."""

    now: float  # epoch seconds on the database's clock
    windows: dict[str, Window] = field(default_factory=dict)
    allowed: dict[str, int] = field(default_factory=dict)
    spent: dict[str, int] = field(default_factory=dict)
    locked: set[str] = field(default_factory=set)  # rate scopes another claim holds
    rules: KeyRules = field(default_factory=lambda: KeyRules(()))
    keys_locked: bool = False
    running: dict[str, int] = field(default_factory=dict)

    def scoped(self, kind: str) -> list[str]:
        prefix = kind + ":"
        return [n[len(prefix) :] for n in (*self.windows, *self.locked) if n.startswith(prefix)]

    def exhausted(self, kind: str) -> list[str]:
        prefix = kind + ":"
        out = [n[len(prefix) :] for n in self.locked if n.startswith(prefix)]
        out += [n[len(prefix):] for n, left in self.allowed.items()
                if left <= 0 and n.startswith(prefix)]  # fmt: skip
        return out

    def full_keys(self) -> list[str]:
        """Keys at their key rule's limit (a task's own limit is checked per job)."""
        out = []
        for key, n in self.running.items():
            limit = self.rules.for_key(key)
            if limit is not None and n >= limit:
                out.append(key)
        return out

    def hold_until(self) -> float | None:
        """When the earliest held-back scope frees (epoch s), or None."""
        times = [w.free_at(self.now) for name, w in self.windows.items()
                 if self.allowed.get(name, 0) <= 0]  # fmt: skip
        if self.locked or self.keys_locked:
            times.append(self.now + LOCKED_RETRY_S)
        return min(times) if times else None


def _locked_rows(db: peewee.Database, dialect: Dialect, sql: str) -> tuple[list, set[str]]:
    """The rows of ``sql``, locked for us on PostgreSQL, and the names another holds."""
    if dialect.name == "sqlite":
        return db.execute_sql(sql).fetchall(), set()
    mine = db.execute_sql(sql + " ORDER BY 1 FOR UPDATE SKIP LOCKED").fetchall()
    every = {row[0] for row in db.execute_sql(sql).fetchall()}
    return mine, every - {row[0] for row in mine}


def load_flow(db: peewee.Database, dialect: Dialect, now: datetime) -> FlowState:
    """Read the rates and key limits for this claim, locking them on PostgreSQL; the
    rates are judged on the database's clock (read after the locks)."""
    rate_rows, locked = _locked_rows(db, dialect, _RATES)
    key_rows, keys_locked = _locked_rows(db, dialect, _KEY_LIMITS)
    if dialect.name == "sqlite":
        clock = (now - EPOCH).total_seconds()
    else:
        clock = float(db.execute_sql(_PG_CLOCK).fetchone()[0])
    state = FlowState(now=clock, locked=locked, keys_locked=bool(keys_locked))
    for name, count, period, text in rate_rows:
        if not count or count < 1 or not period or period <= 0:
            continue  # not a rate jobtui wrote (set_rate refuses it): it limits nothing
        window = Window.load(count, period, text)
        state.windows[name] = window
        state.allowed[name] = window.allowance(clock)
    state.rules = KeyRules(key_rows)
    if state.rules or keys_locked:
        state.running = running_per_key(db)
    return state


def _walk(
    db: peewee.Database,
    dialect: Dialect,
    flow: FlowState,
    want: int,
    params: dict[str, Any],
    queues: Sequence[str] | None,
    room: dict[str, int] | None,
) -> list[str]:
    """Ids of the bound jobs this claim may take, in claim order (at most ``want``)."""
    taken: list[str] = []
    seen: list[str] = []
    lists = dialect.list_param
    for _ in range(WALK_ROUNDS):
        x_queues = flow.exhausted("queue")
        if room is not None:
            x_queues += [q for q, left in room.items() if left <= 0]
        batch = max(16, 2 * (want - len(taken)))
        shared = {
            "now": params["now"], "tasks": params["tasks"], "served": lists(queues),
            "x_queues": lists(x_queues), "x_tasks": lists(flow.exhausted("task")),
            "x_rkeys": lists(flow.exhausted("key")), "x_ckeys": lists(flow.full_keys()),
            "no_ckeys": flow.keys_locked, "seen": lists(seen), "batch": batch,
        }  # fmt: skip
        arms = [("keyed", None)]
        rated = [q for q in flow.scoped("queue") if q not in x_queues
                 and (queues is None or q in queues)]  # fmt: skip
        arms += [("queue", q) for q in rated] + [("queue_fair", q) for q in rated]
        arms += [("task", t) for t in flow.scoped("task") if t not in flow.exhausted("task")]
        found: dict[str, tuple] = {}
        more = False
        for kind, arm in arms:
            got = db.execute_sql(_sql(dialect, kind), {**shared, "arm": arm}).fetchall()
            more = more or len(got) >= batch
            for row in got:
                found.setdefault(row[0], row)
        rows = sorted(found.values(), key=lambda r: (-r[5], r[6], r[0]))
        passed = False
        for job_id, queue, task, rate_key, ckey, _, _ in rows:
            if len(taken) >= want:
                break
            scopes = [s for s in (f"queue:{queue}", f"task:{task}",
                                  None if rate_key is None else f"key:{rate_key}")
                      if s is not None and s in flow.windows]  # fmt: skip
            limit = None if ckey is None else flow.rules.limit(ckey, task, queue)
            if (
                (room is not None and room.get(queue, 1) <= 0)
                or any(flow.allowed[s] <= 0 for s in scopes)
                or (limit is not None and flow.running.get(ckey, 0) >= limit)
            ):
                seen.append(job_id)
                passed = True
                continue
            taken.append(job_id)
            if room is not None and queue in room:
                room[queue] -= 1
            for s in scopes:
                flow.allowed[s] -= 1
                flow.spent[s] = flow.spent.get(s, 0) + 1
            if ckey is not None:
                flow.running[ckey] = flow.running.get(ckey, 0) + 1
        if len(taken) >= want or not more or not passed:
            break
    return taken


def claim_with_flow(
    db: peewee.Database,
    dialect: Dialect,
    limit: int,
    params: dict[str, Any],
    queues: Sequence[str] | None,
    limits: bool,
    now: datetime,
) -> tuple[list[tuple], datetime | None]:
    """Claim up to ``limit`` jobs, rates and key limits applied; returns the claimed rows
    and when a held-back scope frees (naive UTC on the database's clock), if one does."""
    flow = load_flow(db, dialect, now)
    room: dict[str, int] | None = None
    if limits:  # queue concurrency limits (limits.py): bound jobs count against them too
        room = {name: 0 for (name,) in db.execute_sql(_LIMITED).fetchall()}
        room.update(rooms(db, dialect, queues))
    claimed: list[tuple] = []
    ids = _walk(db, dialect, flow, limit, params, queues, room)
    if ids:
        claimed += db.execute_sql(_sql(dialect, "take"), {
            **params, "ids": dialect.list_param(ids)}).fetchall()  # fmt: skip
        spend = dialect.sql(_SPEND)
        for name, starts in flow.spent.items():
            window = flow.windows[name]
            window.spend(flow.now, starts)
            db.execute_sql(spend, {"state": window.dumps(), "name": name})
    rated = {"rated_queues": dialect.list_param(flow.scoped("queue")),
             "rated_tasks": dialect.list_param(flow.scoped("task"))}  # fmt: skip
    base = {**params, **rated}
    for name, left in (room or {}).items():
        take = min(left, limit - len(claimed))
        if take <= 0 or (queues is not None and name not in queues):
            continue
        capped = {**base, **dialect.claim_queue_params([name]), "limit": take, "capped": True}
        claimed += db.execute_sql(dialect.claim_statement(1, unbound=True), capped).fetchall()
    if limit - len(claimed) > 0:
        sql = dialect.claim_statement(None if queues is None else len(queues), unbound=True)
        claimed += db.execute_sql(sql, {**base, "limit": limit - len(claimed)}).fetchall()
    hold = flow.hold_until()
    return claimed, None if hold is None else EPOCH + timedelta(seconds=hold)


def epoch_of(moment: datetime) -> float:
    """Epoch seconds of a naive UTC datetime (the rates' clock)."""
    return (moment - EPOCH).total_seconds()
