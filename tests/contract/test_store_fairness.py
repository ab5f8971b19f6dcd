"""Fairness across tenants (fair_key=): one suite, SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

import jobtui
from jobtui import InvalidJob
from jobtui.models import claim_jobs, complete_job
from jobtui.models.fairness import any_fair, tidy_fair_keys
from jobtui.models.limits import set_queue_limit


def _keys(claimed) -> list[str]:
    return [c.parameters["kwargs"]["tenant"] for c in claimed]


def _enqueue(tenant: str, count: int, **options) -> None:
    jobtui.enqueue_many(
        "t", [{"kwargs": {"tenant": tenant, "n": n}} for n in range(count)],
        fair_key=tenant, **options,
    )  # fmt: skip


def test_a_small_tenant_is_served_among_the_next_starts_behind_a_huge_backlog(db):
    """Tenant A enqueues 10,000 jobs, then tenant B 10: all of B's jobs start among the
    next 40 starts (here: the next 20, one of each key per round)."""
    _enqueue("A", 10_000)
    first = claim_jobs(5)
    assert _keys(first) == ["A"] * 5  # A alone: FIFO within its key
    _enqueue("B", 10)
    starts: list[str] = []
    while len(starts) < 40:
        starts += _keys(claim_jobs(1))
    assert starts.count("B") == 10
    assert max(i for i, key in enumerate(starts) if key == "B") < 40
    assert starts[:4] == ["B", "A", "B", "A"]  # the new key first: it was never served


def test_a_claim_of_many_is_round_robin_and_priority_orders_within_a_key(db):
    _enqueue("A", 6)
    _enqueue("B", 2)
    jobtui.enqueue("t", kwargs={"tenant": "B", "n": 99}, fair_key="B", priority=5)
    claimed = claim_jobs(6)
    # in the order they are to start (the supervisor starts them so): one of each key a round
    assert _keys(claimed) == ["A", "B", "A", "B", "A", "B"]
    b = [c for c in claimed if c.parameters["kwargs"]["tenant"] == "B"]
    assert b[0].parameters["kwargs"]["n"] == 99  # its priority first within B


def test_unkeyed_jobs_count_as_one_more_key(db):
    _enqueue("A", 50)
    for n in range(50):
        jobtui.enqueue("t", kwargs={"tenant": "-", "n": n})
    claimed = claim_jobs(10)
    assert _keys(claimed) == ["A", "-"] * 5  # the unkeyed jobs last in each round
    rest = claim_jobs(200)
    assert len(rest) == 90  # nothing is lost between the two claims


def test_without_fair_keys_the_claim_is_as_before(db):
    assert not any_fair(db)
    for n in range(5):
        jobtui.enqueue("t", kwargs={"tenant": "-", "n": n}, priority=n % 2)
    claimed = claim_jobs(5)
    assert [c.parameters["kwargs"]["n"] for c in claimed] == [1, 3, 0, 2, 4]


def test_keys_of_paused_limited_and_unserved_queues_wait(db):
    _enqueue("A", 3, queue="q1")
    _enqueue("B", 3, queue="q2")
    _pause("q1")
    assert _keys(claim_jobs(10, queues=["q1"])) == []
    claimed = claim_jobs(10)
    assert _keys(claimed) == ["B"] * 3
    _resume("q1")
    set_queue_limit("q1", 1)
    (one,) = claim_jobs(10)
    assert one.queue_name == "q1"
    assert claim_jobs(10) == []  # q1 at its limit
    assert complete_job(one.id, one.attempt, one.lease_token, 1)
    assert len(claim_jobs(10)) == 1


def _pause(name: str) -> None:
    from jobtui.models.actions import set_queue_control

    set_queue_control(name, paused=True)


def _resume(name: str) -> None:
    from jobtui.models.actions import set_queue_control

    set_queue_control(name, paused=False)


def test_tidy_forgets_served_keys_and_finds_keys_without_a_row(db):
    _enqueue("A", 2)
    _enqueue("B", 1)
    assert any_fair(db)
    for job in claim_jobs(10):
        assert complete_job(job.id, job.attempt, job.lease_token, 1)
    with db.atomic():
        assert tidy_fair_keys(db) == (2, 0)
    assert not any_fair(db)
    _enqueue("C", 1)
    db.execute_sql("DELETE FROM fair_keys")  # as a requeue or a retry by hand leaves it
    assert claim_jobs(1) == []  # the key is invisible until tidied
    with db.atomic():
        assert tidy_fair_keys(db) == (0, 1)
    assert _keys(claim_jobs(1)) == ["C"]


def test_a_task_names_the_key_from_its_arguments(db):
    from jobtui import task

    @task(name="fair.by_customer", fair_key=lambda customer, **_: f"customer:{customer}")
    def by_customer(customer: int) -> None:
        return None

    job = by_customer.enqueue(42)
    assert job.fair_key == "customer:42"
    explicit = jobtui.enqueue(by_customer, args=[7], fair_key="vip")
    assert explicit.fair_key == "vip"


@pytest.mark.parametrize("bad", ["", "x" * 201, 3.5, True])
def test_a_bad_fair_key_is_refused_and_nothing_written(db, bad):
    with pytest.raises(InvalidJob, match="fair_key"):
        jobtui.enqueue("t", fair_key=bad)
    assert db.execute_sql("SELECT COUNT(*) FROM jobs").fetchone()[0] == 0
    assert not any_fair(db)


def test_drained_keys_never_leave_a_claim_empty_handed(db):
    """Keys whose jobs all ran stand first in line (served longest ago): a claim forgets
    them and goes on to the keys with jobs, however many drained at once."""
    _enqueue("A", 80)
    for n in range(60):
        _enqueue(f"one-{n:02}", 1)
    started = 0
    while started < 140:
        claimed = claim_jobs(2)
        assert len(claimed) == 2, f"a claim came back with {len(claimed)} after {started}"
        started += 2
    assert claim_jobs(5) == []
    assert db.execute_sql("SELECT COUNT(*) FROM fair_keys").fetchone()[0] <= 1
