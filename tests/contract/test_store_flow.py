"""Rate limits and per-key concurrency in the claim (models/flow.py, rates.py,
key_limits.py): one suite, SQLite and PostgreSQL."""

from __future__ import annotations

import json
import multiprocessing
import time
from collections import Counter
from datetime import timedelta

import pytest

import jobtui
from jobtui.models import Job, claim_jobs, complete_job, store
from jobtui.models.claims import claim_in_transaction
from jobtui.models.clock import utcnow
from jobtui.models.dialect import dialect_for
from jobtui.models.flow import any_flow
from jobtui.models.held import held_reason
from jobtui.models.key_limits import list_key_limits, set_key_limit
from jobtui.models.limits import set_queue_limit
from jobtui.models.rates import list_rates, set_rate


def _count(claimed, attr: str = "queue_name") -> Counter:
    return Counter(getattr(c, attr) for c in claimed)


def _claim(db, limit: int = 50) -> tuple[list, list]:
    held: list = []
    with dialect_for(db).write_transaction(db):
        got = claim_in_transaction(db, limit, flow=None, held=held)
    return got, held


def test_a_queue_rate_holds_its_jobs_back_and_others_flow_past(db):
    jobtui.enqueue_many("t", [{"args": [n]} for n in range(5)], queue="emails")
    jobtui.enqueue_many("t", [{"args": [n]} for n in range(3)], queue="other")
    assert not any_flow(db)
    set_rate("emails", "2/m")
    assert any_flow(db)
    got, held = _claim(db)
    assert _count(got) == {"emails": 1, "other": 3}  # an idle rate starts with one
    assert held and held[0] > utcnow() + timedelta(seconds=25)  # the next start: 30 s on
    again, held = _claim(db)
    assert again == [] and held
    waiting = Job.get((Job.queue_name == "emails") & (Job.status == "pending"))
    assert held_reason(waiting) == "rate 2/m on queue emails"
    set_rate("emails", "none")
    assert not any_flow(db) and list_rates() == []
    assert _count(claim_jobs(10)) == {"emails": 4}  # lifted: the rest at once
    assert held_reason(Job.get_by_id(waiting.id)) is None


def test_task_and_key_rates_apply_to_their_jobs_only(db):
    jobtui.enqueue_many("slow", [{"args": [n]} for n in range(3)])
    jobtui.enqueue_many("t", [{"args": [n]} for n in range(3)], rate_key="api:stripe")
    jobtui.enqueue_many("t", [{"args": [n]} for n in range(2)], rate_key="api:other")
    jobtui.enqueue_many("t", [{"args": [n]} for n in range(2)])
    set_rate("task:slow", "1/h")
    set_rate("key:api:stripe", "1/h")
    got, _ = _claim(db)
    tally = Counter((c.job_type, Job.get_by_id(c.id).rate_key) for c in got)
    assert tally == {("slow", None): 1, ("t", "api:stripe"): 1, ("t", "api:other"): 2,
                     ("t", None): 2}  # fmt: skip
    stripe = Job.get((Job.rate_key == "api:stripe") & (Job.status == "pending"))
    assert held_reason(stripe) == "rate 1/h on key api:stripe"
    slow = Job.get((Job.job_type == "slow") & (Job.status == "pending"))
    assert held_reason(slow) == "rate 1/h on task slow"


def test_a_rate_never_passes_its_window_claim_after_claim(db):
    """5/s claimed every 20 ms for 2.5 s: never more than 5 starts in any second of the
    database's clock (the rate's own record of when it let each start), and used."""
    jobtui.enqueue_many("t", [{"args": [n]} for n in range(40)], queue="q")
    set_rate("q", "5/s")
    starts: dict[float, int] = {}
    claimed = 0
    begin = time.monotonic()
    while time.monotonic() - begin < 2.5:
        got, _ = _claim(db, 10)
        claimed += len(got)
        (state,) = db.execute_sql("SELECT state FROM rates").fetchone()
        starts.update((t, int(n)) for t, n in json.loads(state)["log"])
        time.sleep(0.02)
    assert sum(starts.values()) == claimed
    in_any_second = max(sum(n for u, n in starts.items() if t <= u < t + 1.0) for t in starts)
    assert in_any_second <= 5
    assert max(starts.values()) <= 2  # spread out: a late claim catches up one start at most
    assert claimed >= 11  # 2.5 s at 5/s: 12 or 13 when nothing is lost


def test_a_key_limit_caps_each_matching_key_and_other_keys_flow(db):
    for key in ("customer:1", "customer:2"):
        jobtui.enqueue_many("t", [{"args": [n]} for n in range(4)], concurrency_key=key)
    jobtui.enqueue_many("t", [{"args": [n]} for n in range(2)], concurrency_key="vendor:1")
    jobtui.enqueue_many("t", [{"args": [n]} for n in range(2)])
    set_key_limit("key:customer:*", 2)
    got = claim_jobs(50)
    keys = Counter(Job.get_by_id(c.id).concurrency_key for c in got)
    assert keys == {"customer:1": 2, "customer:2": 2, "vendor:1": 2, None: 2}
    assert claim_jobs(50) == []
    waiting = Job.get((Job.concurrency_key == "customer:1") & (Job.status == "pending"))
    assert held_reason(waiting) == "key customer:1 at 2/2"
    (limits,) = list_key_limits()
    assert limits["running"] == {"customer:1": 2, "customer:2": 2}
    done = next(c for c in got if Job.get_by_id(c.id).concurrency_key == "customer:1")
    assert complete_job(done.id, done.attempt, done.lease_token, 1)
    (more,) = claim_jobs(50)
    assert Job.get_by_id(more.id).concurrency_key == "customer:1"


def test_a_tasks_key_limit_applies_to_its_own_jobs_and_the_tightest_holds(db):
    jobtui.enqueue_many("solo", [{"args": [n]} for n in range(3)], concurrency_key="k")
    jobtui.enqueue_many("t", [{"args": [n]} for n in range(3)], concurrency_key="k")
    set_key_limit("task:solo", 1)
    got = claim_jobs(50)
    assert _count(got, "job_type") == {"solo": 1, "t": 3}  # t's jobs: no limit of their own
    set_key_limit("key:k", 5)
    assert claim_jobs(50) == []  # k runs 4: solo's limit 1 is the tightest for solo


def test_a_queues_key_limit_applies_to_each_key_of_its_jobs(db):
    for key in ("a", "b"):
        jobtui.enqueue_many("t", [{"args": [n]} for n in range(3)], queue="emails",
                            concurrency_key=key)  # fmt: skip
    jobtui.enqueue_many("t", [{"args": [n]} for n in range(3)], queue="other", concurrency_key="a")
    set_key_limit("queue:emails", 1)
    got = claim_jobs(50)
    tally = Counter((c.queue_name, Job.get_by_id(c.id).concurrency_key) for c in got)
    # one of each key in emails (its limit); other's jobs of key a have no limit of their own
    assert tally == {("emails", "a"): 1, ("emails", "b"): 1, ("other", "a"): 3}
    assert claim_jobs(50) == []
    waiting = Job.get((Job.queue_name == "emails") & (Job.concurrency_key == "b")
                      & (Job.status == "pending"))  # fmt: skip
    assert held_reason(waiting) == "key b at 1/1"


def test_a_declared_limit_never_overrides_the_operators(db):
    set_rate("task:t", "5/s", declared=True)
    set_rate("task:t", "1/s")  # the operator's
    set_rate("task:t", "9/s", declared=True)  # a supervisor's restart
    assert [r["rate"] for r in list_rates()] == ["1/s"]
    set_key_limit("task:t", 3, declared=True)
    set_key_limit("task:t", None)  # the operator lifts it: kept lifted across restarts
    set_key_limit("task:t", 3, declared=True)
    assert [(k["limit"], k["declared"]) for k in list_key_limits()] == [(None, False)]
    set_rate("task:u", "2/s", declared=True)
    set_rate("task:u", "none", declared=True)  # the task no longer declares one
    assert [r["name"] for r in list_rates()] == ["task:t"]


def test_rates_and_queue_limits_both_hold(db):
    jobtui.enqueue_many("t", [{"args": [n]} for n in range(4)], queue="api",
                        concurrency_key="c")  # fmt: skip
    jobtui.enqueue_many("t", [{"args": [n]} for n in range(4)], queue="api")
    set_queue_limit("api", 3)
    set_key_limit("key:c", 1)
    got = claim_jobs(50)
    assert len(got) == 3  # the queue's limit, with at most one of key c
    assert Counter(Job.get_by_id(c.id).concurrency_key for c in got)["c"] == 1


def test_bad_rates_and_limits_are_refused(db):
    for bad in ("fast", "0/s", "10/x", "-1/s"):
        with pytest.raises(ValueError, match="rate"):
            set_rate("q", bad)
    with pytest.raises(ValueError, match="queue:NAME"):
        set_rate("bucket:x", "1/s")
    with pytest.raises(ValueError, match="key limit"):
        set_key_limit("customer:*", 2)
    with pytest.raises(ValueError, match="at least 1"):
        set_key_limit("key:x", 0)
    assert list_rates() == [] and list_key_limits() == []


def _hammer(url: str, seconds: float, barrier, results) -> None:
    """One claimer: claim for ``seconds``, never completing (key limits stay spent)."""
    store.reset()
    store.use_database(url)
    barrier.wait(30)
    claimed, errors = [], []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            claimed += [c.id for c in claim_jobs(4)]
        except Exception as exc:  # noqa: BLE001 - reported as a test failure
            errors.append(f"{type(exc).__name__}: {exc}")
        time.sleep(0.002)
    results.put((claimed, errors))


@pytest.mark.timeout(120)
def test_three_processes_claiming_together_never_pass_a_rate_or_a_key_limit(db, db_url):
    jobtui.enqueue_many("t", [{"args": [n]} for n in range(200)], queue="rated")
    jobtui.enqueue_many("t", [{"args": [n]} for n in range(50)], concurrency_key="k:1")
    jobtui.enqueue_many("t", [{"args": [n]} for n in range(50)], concurrency_key="k:2")
    set_rate("rated", "20/s")
    set_key_limit("key:k:*", 3)
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(3), context.Queue()
    seconds = 2.0
    procs = [context.Process(target=_hammer, args=(db_url, seconds, barrier, results))
             for _ in range(3)]  # fmt: skip
    for proc in procs:
        proc.start()
    gathered = [results.get(timeout=90) for _ in procs]
    for proc in procs:
        proc.join(30)
    assert [e for _, errors in gathered for e in errors] == []
    ids = [i for claimed, _ in gathered for i in claimed]
    assert len(ids) == len(set(ids))
    rows = list(Job.select().where(Job.id.in_(ids)))
    assert Counter(r.concurrency_key for r in rows if r.concurrency_key) == {"k:1": 3, "k:2": 3}
    rated = sum(1 for r in rows if r.queue_name == "rated")
    assert 20 * seconds * 0.8 <= rated <= 20 * (seconds + 0.5) + 1  # spread, and used


def test_a_damaged_rate_row_never_stops_the_claim(db):
    jobtui.enqueue_many("t", [{"args": [n]} for n in range(3)], queue="q")
    set_rate("q", "1/h")
    db.execute_sql(dialect_for(db).sql("UPDATE rates SET state = :s"), {"s": '{"log": 7'})
    db.execute_sql(dialect_for(db).sql(
        "INSERT INTO rates (name, max_starts, period_s, declared, updated_at) "
        "VALUES ('queue:other', 0, 0, :no, :now)"), {"no": False, "now": utcnow()})  # fmt: skip
    jobtui.enqueue("t", queue="other")
    got, _ = _claim(db)
    assert Counter(c.queue_name for c in got) == {"q": 1, "other": 1}
