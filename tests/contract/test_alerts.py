"""Queue alerts' store (models/alert.py), on SQLite and PostgreSQL: one change of state
wins however many callers race, and the measures read the claim index and the rollup."""

from __future__ import annotations

import threading
from datetime import timedelta

import jobtui
from jobtui.models import claim_jobs, complete_job, fail_job
from jobtui.models.alert import change_alert, failure_rates, firing_alerts, queue_waits
from jobtui.models.clock import utcnow
from jobtui.models.store import get_database

RACERS = 6


def _race(db, firing: bool) -> list:
    """RACERS threads (each on its own connection) change the same alert at once."""
    barrier, results = threading.Barrier(RACERS), []

    def one() -> None:
        barrier.wait()
        try:
            results.append(change_alert(db, "wait", "emails", firing, 42.0, 30.0, utcnow()))
        finally:
            db.close()

    threads = [threading.Thread(target=one) for _ in range(RACERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(results) == RACERS
    return [r for r in results if r is not None]


def test_exactly_one_racer_begins_an_episode_and_one_ends_it(db):
    db = get_database()
    (won,) = _race(db, True)
    assert won[0] == 1 and won[1] is not None
    state = firing_alerts(db)["emails"]["wait"]
    assert (state["episode"], state["value"], state["threshold"]) == (1, 42.0, 30.0)
    (recovered,) = _race(db, False)
    assert recovered[0] == 1
    assert firing_alerts(db) == {}
    (again,) = _race(db, True)
    assert again[0] == 2  # the next episode


def test_the_oldest_due_job_sets_a_queues_wait(db):
    now = utcnow()
    jobtui.enqueue("t.a", queue="emails")
    jobtui.enqueue("t.b", queue="later", delay=3600)  # not due: no wait
    waits = queue_waits(get_database(), None, now + timedelta(seconds=30))
    assert 29 < waits["emails"] < 31 and waits["later"] == 0
    assert queue_waits(get_database(), ["nothing"], now) == {"nothing": 0.0}


def test_the_failure_rate_counts_the_runs_of_the_last_five_minutes(db):
    for n in range(3):
        jobtui.enqueue("t.ok", queue="emails")
        (run,) = claim_jobs(1, queues=["emails"])
        assert complete_job(run.id, run.attempt, run.lease_token, n)
    jobtui.enqueue("t.flaky", queue="emails", max_retries=1)
    (run,) = claim_jobs(1, queues=["emails"])
    assert fail_job(run.id, run.attempt, run.lease_token, "boom", retry_delay=0) == "retrying"
    rates = failure_rates(get_database(), utcnow())
    assert rates == {"emails": (25.0, 4)}  # a retried run failed too
    assert failure_rates(get_database(), utcnow() + timedelta(minutes=6)) == {}
