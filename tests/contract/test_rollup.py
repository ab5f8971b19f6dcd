"""The rollup (models/rollup.py) on both engines: every way a job ends is counted once, in
the transaction that ended it; minute rows fold into hours and old rows go; and with
200,000 jobs ended in the last hour every queue's figures are exact (issue 12)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from rollup_check import rollup_totals, table_totals

import jobtui
from jobtui.models import Job, cancel_jobs, claim_jobs, complete_job, fail_job
from jobtui.models.clock import sql_timestamp, utcnow
from jobtui.models.dialect import dialect_for
from jobtui.models.outcomes import Outcome, write_outcomes
from jobtui.models.queries import queue_stats
from jobtui.models.rollup import (
    HIST_BUCKETS,
    VALUE_COLUMNS,
    Tally,
    bucket_of,
    fold_rollup,
    prune_rollup,
    upsert_rows,
)
from jobtui.models.rollup_read import DAY, HOUR, WEEK, read_window
from jobtui.models.workflow import expire_jobs


def _run(queue: str, task: str, **options):
    job = jobtui.enqueue(task, queue=queue, **options)
    (claimed,) = claim_jobs(1, queues=[queue])
    assert claimed.id == job.id
    return claimed


def test_every_way_a_job_ends_is_counted_once(db):
    for n in range(3):
        run = _run("emails", "t.send")
        assert complete_job(run.id, run.attempt, run.lease_token, n)
    run = _run("emails", "t.flaky", max_retries=1)
    assert fail_job(run.id, run.attempt, run.lease_token, "boom", retry_delay=0) == "retrying"
    (again,) = claim_jobs(1, queues=["emails"])
    assert fail_job(again.id, again.attempt, again.lease_token, "boom") == "failed"
    run = _run("ingest", "t.load")
    assert fail_job(run.id, run.attempt, run.lease_token, "bad", permanent=True) == "failed"
    run = _run("ingest", "t.load")  # a running job stopped on request
    assert write_outcomes([Outcome(run.id, run.attempt, run.lease_token, "cancelled",
                                   error="cancelled by operator")])[0] == "cancelled"  # fmt: skip
    run = _run("held", "t.load")  # put back by a shutdown: not an end
    assert write_outcomes([Outcome(run.id, run.attempt, run.lease_token, "interrupted")])
    waiting = jobtui.enqueue("t.later", queue="ingest", delay=3600)
    cancel_jobs([waiting.id])  # an operator's cancel of a job that never ran
    parent = _run("ingest", "t.parent")
    child = jobtui.enqueue("t.child", queue="ingest", depends_on=[parent.id])
    grandchild = jobtui.enqueue("t.child", queue="ingest", depends_on=[child.id])
    assert fail_job(parent.id, parent.attempt, parent.lease_token, "x", permanent=True)
    orphan = jobtui.enqueue("t.child", queue="ingest", depends_on=[parent.id])  # dead on arrival
    expiring = jobtui.enqueue("t.expiring", queue="ingest", delay=3600, deadline=1)
    with dialect_for(db).write_transaction(db):
        assert expire_jobs(db, sql_timestamp(utcnow() + timedelta(seconds=5))) == [expiring.id]
    assert {Job.get_by_id(j.id).status for j in (child, grandchild, orphan)} == {"cancelled"}

    assert rollup_totals(db) == table_totals(db)
    assert rollup_totals(db)[("emails", "t.flaky")] == (0, 1, 1, 0, 2, 2)
    assert rollup_totals(db)[("ingest", "t.child")] == (0, 0, 0, 3, 0, 0)


def test_a_lost_lease_counts_nothing(db):
    run = _run("q", "t.x")
    assert not complete_job(run.id, run.attempt, "not-the-token", 1)
    assert rollup_totals(db) == {}


def test_minutes_fold_into_hours_and_old_rows_are_pruned(db):
    now = datetime(2026, 12, 4, 12, 30, 15)
    with db.atomic():
        for minutes_ago in range(0, 400, 7):
            tally = Tally(now - timedelta(minutes=minutes_ago))
            tally.add("q", "t", "completed", tally.now - timedelta(seconds=2),
                      tally.now - timedelta(seconds=3))  # fmt: skip
            tally.add("q", "t", "failed")
            tally.write(db)
        old = Tally(now - timedelta(days=9))
        old.add("q", "t", "completed")
        old.write(db)
    before = rollup_totals(db)
    assert fold_rollup(db, now) > 0
    while fold_rollup(db, now):
        pass
    assert rollup_totals(db) == before  # nothing lost, nothing counted twice
    spans = dict(db.execute_sql("SELECT span_s, COUNT(*) FROM job_rollup GROUP BY span_s"))
    assert set(spans) == {60, 3600}
    cut = sql_timestamp(now - timedelta(hours=2))
    (late,) = db.execute_sql(
        f"SELECT COUNT(*) FROM job_rollup WHERE span_s = 60 AND bucket_start < {db.param}", [cut]
    ).fetchone()
    assert late == 0
    assert prune_rollup(db, now) == 1
    week = read_window(db, now, WEEK).total
    assert (week.completed, week.failed) == (before[("q", "t")][0] - 1, before[("q", "t")][1])
    assert read_window(db, now, DAY).total.completed == sum(
        1 for m in range(0, 400, 7) if now - timedelta(minutes=m) >= DAY.start(now)
    )


QUEUES = ("default", "emails", "orders", "sync", "reports", "media", "exports", "ingest",
          "maintenance", "billing")  # fmt: skip


def _share(total: int, minute: int) -> int:
    return total // 60 + (1 if minute < total % 60 else 0)


def _two_hundred_thousand(db, now: datetime) -> None:
    """200,000 ends in the last hour, as the rollup holds them (the issue's numbers):
    190,000 completed and 10,000 failed. Each queue ended 20,000, all of the failures in
    ``sync`` (10,000 of its 20,000). Runs take 0.5 s (waits 2 s) except in ``reports``:
    40 s (waits 30 s)."""
    rows = []
    for queue in QUEUES:
        for minute in range(60):
            values = [0] * len(VALUE_COLUMNS)
            failed = _share(10_000, minute) if queue == "sync" else 0
            done = _share(20_000, minute) - failed
            run_s, wait_s = (40.0, 30.0) if queue == "reports" else (0.5, 2.0)
            ended = done + failed
            values[0], values[1] = done, failed
            values[4], values[5] = wait_s * ended, run_s * ended
            values[6 + bucket_of(wait_s)] = ended
            values[6 + HIST_BUCKETS + bucket_of(run_s)] = ended
            bucket = (now - timedelta(minutes=minute)).replace(second=0, microsecond=0)
            rows.append((sql_timestamp(bucket), 60, queue, f"t.{queue}", *values))
    with db.atomic():
        upsert_rows(db, rows)


def test_two_hundred_thousand_ends_in_the_last_hour_are_exact(db):
    now = datetime(2026, 12, 4, 12, 30, 15)
    _two_hundred_thousand(db, now)
    hour = read_window(db, now, HOUR)
    by_queue = {q.queue: q for q in hour.queues}
    assert set(by_queue) == set(QUEUES)  # every queue present
    for name, q in by_queue.items():
        if name == "sync":
            assert (q.completed, q.failed) == (10_000, 10_000)
        else:
            assert (q.completed, q.failed) == (20_000, 0)
        assert q.per_min == pytest.approx(20_000 / 60)
        expected_run = 40.0 if name == "reports" else 0.5
        assert q.run_p(0.5) == pytest.approx(expected_run)  # one bucket: its mean, exact
        assert q.run_p(0.95) == pytest.approx(expected_run)
        assert q.avg_run_s == pytest.approx(expected_run)
        assert sum(q.done_series) == q.completed and len(q.done_series) == 60
    total = hour.total
    assert (total.completed, total.failed) == (190_000, 10_000)
    assert total.run_p(0.5) == pytest.approx(0.5, rel=0.2)  # nine queues of ten: 0.5 s
    assert 28 <= total.run_p(0.95) <= 45  # the slowest tenth: 40 s, within its bucket
    stats = queue_stats(db=db, now=now)
    assert stats["ingest"]["completed_1h"] == 20_000 and stats["ingest"]["failed_1h"] == 0
    assert stats["sync"]["failed_1h"] == 10_000
    assert stats["reports"]["avg_run_s"] == pytest.approx(40.0)
    assert stats["emails"]["per_min_1h"] == pytest.approx(20_000 / 60, abs=0.01)


def test_the_supervisors_keeper_folds_then_waits_a_minute(db, monkeypatch):
    from jobtui.supervisor import rollup_upkeep

    now = utcnow()
    monkeypatch.setattr(rollup_upkeep, "utcnow", lambda: now)
    with db.atomic():
        tally = Tally(now - timedelta(hours=3))
        tally.add("q", "t", "completed")
        tally.write(db)
    keeper = rollup_upkeep.RollupKeeper(db, now_mono=100.0, interval_s=60.0)
    keeper.tick(101.0)  # not yet due
    assert dict(db.execute_sql("SELECT span_s, COUNT(*) FROM job_rollup GROUP BY span_s")) == {
        60: 1
    }
    keeper.tick(106.0)
    assert dict(db.execute_sql("SELECT span_s, COUNT(*) FROM job_rollup GROUP BY span_s")) == {
        3600: 1
    }
    assert keeper.next_mono == 106.0  # it folded: look again next turn
    keeper.tick(106.0)
    assert keeper.next_mono == 166.0


def test_a_turn_writes_its_rollup_rows_in_one_statement(db, monkeypatch):
    """The group commit's outcomes, their cascades (dependants cancelled) and the expired
    jobs of the same turn reach the rollup in one upsert, rows in key order: on
    PostgreSQL two supervisors then never lock rollup rows in opposite orders."""
    from jobtui.models import rollup
    from jobtui.supervisor.commit import GroupCommit

    done = _run("b", "t.ok")
    failing = _run("a", "t.bad")
    jobtui.enqueue("t.child", queue="z", depends_on=[failing.id])
    jobtui.enqueue("t.late", queue="c", delay=3600, deadline=1)
    calls: list[list] = []
    real = rollup.upsert_rows
    monkeypatch.setattr(rollup, "upsert_rows", lambda d, rows: (calls.append(rows), real(d, rows)))
    commit = GroupCommit(db, "sup", ["t.ok", "t.bad"])
    commit.add_outcome(Outcome(done.id, done.attempt, done.lease_token, "completed", "1"))
    commit.add_outcome(Outcome(failing.id, failing.attempt, failing.lease_token, "failed",
                               error="x", permanent=True))  # fmt: skip
    later = (utcnow() + timedelta(seconds=5)).isoformat(sep=" ")
    assert commit.run(unknown_sweep=lambda d, stamp, tally: expire_jobs(d, later, tally))
    assert len(calls) == 1
    assert [row[2:4] for row in calls[0]] == [("a", "t.bad"), ("b", "t.ok"), ("c", "t.late"),
                                              ("z", "t.child")]  # fmt: skip
    assert rollup_totals(db) == table_totals(db)


def test_an_upsert_names_only_the_columns_it_adds_to(db):
    """Columns left out default to 0; a row of zeros changes nothing."""
    key = (sql_timestamp(datetime(2026, 12, 4, 12, 0)), 60, "q", "t")
    zeros = [0] * len(VALUE_COLUMNS)
    with db.atomic():
        upsert_rows(db, [(*key, *zeros)])
        upsert_rows(db, [(*key, 2, *zeros[1:])])
        upsert_rows(db, [(*key, 1, 1, *zeros[2:])])
        upsert_rows(db, [(*key, *zeros)])
    row = db.execute_sql("SELECT completed, failed, retried, r5, w0 FROM job_rollup").fetchall()
    assert [tuple(int(v) for v in r) for r in row] == [(3, 1, 0, 0, 0)]


@pytest.mark.parametrize("in_bulk", [False, True], ids=["complete_job", "write_outcomes"])
def test_a_retry_waits_from_its_backoffs_end(db, in_bulk):
    """A retried job keeps its place in line (run_at) and waits out its backoff
    (next_retry_at): its wait is counted from the backoff's end, whichever statement
    completes it (the supervisor's bulk completion returned run_at: 100 s here)."""
    run = _run("q", "t.late", max_retries=1)
    assert fail_job(run.id, run.attempt, run.lease_token, "boom", retry_delay=0) == "retrying"
    now = utcnow()
    Job.update(run_at=now - timedelta(seconds=100), next_retry_at=now - timedelta(seconds=1)).where(
        Job.id == run.id
    ).execute()
    (again,) = claim_jobs(1, queues=["q"])
    if in_bulk:
        assert write_outcomes([Outcome(again.id, again.attempt, again.lease_token, "completed",
                                       result_json="1")]) == ["completed"]  # fmt: skip
    else:
        assert complete_job(again.id, again.attempt, again.lease_token, 1)
    waits = db.execute_sql(
        "SELECT SUM(wait_sum_s), SUM(completed) FROM job_rollup WHERE job_type = 't.late'"
    ).fetchone()
    assert waits[1] == 1
    assert 0.5 < float(waits[0]) < 30, waits  # the first run's wait (~0) plus about 1 s
