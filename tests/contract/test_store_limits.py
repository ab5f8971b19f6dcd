"""Per-queue concurrency limits (across every supervisor): one suite, SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

import jobtui
from jobtui.models import Job, claim_jobs, complete_job
from jobtui.models.limits import set_queue_limit


def _queues(claimed) -> list[str]:
    return sorted(c.queue_name for c in claimed)


def test_a_limited_queue_never_has_more_running_than_its_limit(db):
    for n in range(5):
        jobtui.enqueue("t", args=[n], queue="api")
    for n in range(3):
        jobtui.enqueue("t", args=[n], queue="other")
    set_queue_limit("api", 2)
    first = claim_jobs(10)
    assert _queues(first) == ["api", "api", "other", "other", "other"]
    assert claim_jobs(10) == []  # two of api run: none more
    done = next(c for c in first if c.queue_name == "api")
    assert complete_job(done.id, done.attempt, done.lease_token, 1)
    (next_one,) = claim_jobs(10)
    assert next_one.queue_name == "api"
    set_queue_limit("api", None)  # lifted: the rest at once
    assert _queues(claim_jobs(10)) == ["api", "api"]


def test_a_limited_queue_gets_its_share_of_workers_shared_with_busy_queues(db):
    """Claimed first, up to its room: the busy queue cannot take every slot."""
    for n in range(20):
        jobtui.enqueue("t", args=[n], queue="busy", priority=5)
    jobtui.enqueue("t", queue="api")
    set_queue_limit("api", 1)
    assert _queues(claim_jobs(2)) == ["api", "busy"]


def test_limits_respect_pauses_served_queues_and_the_claim_order(db):
    for priority in (0, 9, 5):
        jobtui.enqueue("t", args=[priority], queue="api", priority=priority)
    set_queue_limit("api", 2)
    assert claim_jobs(5, queues=["other"]) == []  # not served: not claimed
    jobtui.models.set_queue_paused("api", True)
    assert claim_jobs(5) == []
    jobtui.models.set_queue_paused("api", False)
    claimed = claim_jobs(5, queues=["api", "other"])
    assert [c.priority for c in claimed] == [9, 5]  # the limit takes the best two
    row = Job.get_by_id(claimed[0].id)
    assert row.status == "running"


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "2", "lots"])
def test_a_limit_is_a_whole_number_of_at_least_one(db, bad):
    with pytest.raises(ValueError, match="at least 1"):
        set_queue_limit("api", bad)
