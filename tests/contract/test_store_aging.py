"""Priority aging (--priority-aging, jobtui aging QUEUE): one suite, SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest

import jobtui
from jobtui.models import Job, claim_jobs
from jobtui.models.aging import (
    MAX_STEPS,
    age_queue,
    aging_periods,
    describe_period,
    describe_priority,
    parse_period,
    set_queue_aging,
)
from jobtui.models.clock import utcnow


def _age(db, queue: str, period: float, later_s: float, **kw) -> int | None:
    with db.atomic():
        return age_queue(db, queue, period, utcnow() + timedelta(seconds=later_s), **kw)


def test_a_job_gains_one_step_per_period_waited_and_keeps_its_given_priority(db):
    low = jobtui.enqueue("t", priority=0)
    high = jobtui.enqueue("t", priority=10)
    assert _age(db, "default", 60, 30) == 0  # not a period yet
    assert _age(db, "default", 60, 3 * 60 + 1) == 2  # both gain 3 steps
    row = Job.get_by_id(low.id)
    assert (row.priority, row.base_priority) == (3, 0)
    assert describe_priority(row.priority, row.base_priority) == "0 (aged +3)"
    assert Job.get_by_id(high.id).priority == 13
    assert _age(db, "default", 60, 3 * 60 + 1) == 0  # the same wait: nothing more
    assert _age(db, "default", 60, 12 * 60 + 1) == 2
    assert Job.get_by_id(low.id).priority == 12  # from its base: 0 + 12, not 3 + 12


def test_an_aged_low_job_overtakes_new_high_priority_work(db):
    low = jobtui.enqueue("t", priority=0)
    _age(db, "default", 1, 11.5)  # 11 steps
    for _ in range(5):
        jobtui.enqueue("t", priority=10)
    assert claim_jobs(1)[0].id == low.id


def test_steps_are_capped_and_other_queues_and_running_jobs_untouched(db):
    job = jobtui.enqueue("t")
    other = jobtui.enqueue("t", queue="other")
    running = jobtui.enqueue("t")
    claimed = claim_jobs(1)  # the oldest one: job
    assert claimed[0].id == job.id
    _age(db, "default", 1, 10 * MAX_STEPS)
    assert Job.get_by_id(running.id).priority == MAX_STEPS
    assert Job.get_by_id(job.id).priority == 0  # running: not aged
    assert Job.get_by_id(other.id).priority == 0


def test_a_retry_waits_from_the_end_of_its_backoff(db):
    job = jobtui.enqueue("t")
    later = utcnow() + timedelta(seconds=100)
    db.execute_sql(
        "UPDATE jobs SET status = 'retrying', next_retry_at = %s WHERE id = %s"
        .replace("%s", db.param), [later.isoformat(sep=" ", timespec="microseconds"), job.id],
    )  # fmt: skip
    assert _age(db, "default", 10, 50) == 0
    assert _age(db, "default", 10, 125) == 1
    assert Job.get_by_id(job.id).priority == 2


def test_one_supervisor_per_interval_takes_the_turn(db):
    jobtui.enqueue("t")
    assert _age(db, "default", 1, 5, interval_s=10) == 1
    assert _age(db, "default", 1, 6, interval_s=10) is None  # another took it 1 s ago
    assert _age(db, "default", 1, 16, interval_s=10) == 1


def test_queue_settings_override_the_supervisors_default(db):
    jobtui.enqueue("t", queue="a")
    jobtui.enqueue("t", queue="b")
    jobtui.enqueue("t", queue="c")
    set_queue_aging("b", 0)  # off here, whatever the supervisors say
    set_queue_aging("c", 30)
    assert aging_periods(db, None, 600) == {"a": 600, "c": 30}
    assert aging_periods(db, ["a"], None) == {"c": 30}
    assert aging_periods(db, None, None) == {"c": 30}
    set_queue_aging("c", None)
    assert aging_periods(db, None, None) == {}
    stats = jobtui.queue_stats()
    assert stats["b"]["priority_aging_s"] == 0 and stats["a"]["priority_aging_s"] is None


def test_an_operators_priority_replaces_the_aged_one(db):
    from jobtui.models.actions import change_priority

    job = jobtui.enqueue("t")
    _age(db, "default", 1, 3.5)
    change_priority([job.id], priority=7)
    row = Job.get_by_id(job.id)
    assert (row.priority, row.base_priority) == (7, None)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("10m", 600), ("90s", 90), ("1.5h", 5400), ("2d", 172800), ("45", 45), ("off", 0)],
)
def test_periods_parse_and_print(text, seconds):
    assert parse_period(text) == seconds
    if seconds:
        assert parse_period(describe_period(seconds)) == seconds


@pytest.mark.parametrize("bad", ["", "ten minutes", "-5m", "5 weeks", "0.01s", "1e9"])
def test_bad_periods_are_refused(bad):
    with pytest.raises(ValueError):
        parse_period(bad)
