"""The console's data source on a real database (SQLite and PostgreSQL): keyset windows,
filters, capped counts, aggregates, and rows that vanish."""

from __future__ import annotations

from datetime import timedelta

import pytest
from tui_dbjobs import make_job, make_jobs, make_worker

from jobtui.models import Job, Queue, Schedule, Worker
from jobtui.models.clock import utcnow
from jobtui.models.ready_reads import READY_PARTS
from jobtui.models.rollup import Tally
from jobtui.models.rollup_read import HOUR, read_window
from jobtui.tui import source as source_module
from jobtui.tui import stats
from jobtui.tui.clock import SystemClock
from jobtui.tui.filters import parse_filter
from jobtui.tui.snapshot import JobsQuery
from jobtui.tui.source import DataSource
from jobtui.tui.stats import id_floor


@pytest.fixture
def source(db):
    return DataSource(db, url="postgresql://u:secret@h/db", clock=SystemClock(), stats_ttl_s=0)


def ids(view) -> list[str]:
    return [row.id for row in view.page.rows]


def page(source, text: str = "", **query) -> list[str]:
    return ids(source.jobs_view(JobsQuery(filter=parse_filter(text), **query), with_panes=False))


def test_the_label_hides_the_password(source):
    assert source.header().database == "postgresql://u:***@h/db"


def test_keyset_windows_cover_every_job_once(source):
    made = make_jobs(23)
    newest_first = list(reversed(made))
    seen: list[str] = []
    top = None
    while True:
        view = source.jobs_view(JobsQuery(top=top, limit=10), with_panes=False)
        rows = ids(view)
        seen += rows if top is None else rows[1:]  # the top row repeats (inclusive bound)
        if not view.page.more_below:
            break
        top = rows[-1]
    assert seen == newest_first
    back = source.rows_before(JobsQuery(top=newest_first[12], limit=10), 5)
    assert back == newest_first[11:6:-1]
    assert source.last_page_top(JobsQuery(limit=10)) == newest_first[13]
    last = source.jobs_view(JobsQuery(top=newest_first[13], limit=10), with_panes=False)
    assert ids(last) == newest_first[13:] and last.page.more_above and not last.page.more_below
    oldest = source.jobs_view(JobsQuery(limit=5, oldest_first=True), with_panes=False)
    assert ids(oldest) == made[:5]


def test_state_filters_merge_branches_in_id_order(source):
    jobs = [make_job(status=s) for s in ("failed", "pending", "cancelled", "failed", "running")]
    assert page(source, "state:failed") == [jobs[3], jobs[0]]
    assert page(source, "state:failed,cancelled") == [jobs[3], jobs[2], jobs[0]]
    assert page(source, "!state:failed !state:pending") == [jobs[4], jobs[2]]
    view = source.jobs_view(JobsQuery(filter=parse_filter("state:failed,cancelled"), limit=2),
                            with_panes=False)  # fmt: skip
    assert ids(view) == [jobs[3], jobs[2]] and view.page.more_below
    assert view.matching == 3


def test_matching_count_agrees_with_the_rows_shown(db):
    """Issue 12: "0 matching · 3 rows" under state:running, "15 matching · 16 rows": the
    count was cached for seconds while the page was read live. Counts are cached (a long
    TTL here), yet the count beside a page always agrees with it."""
    source = DataSource(db, clock=SystemClock(), stats_ttl_s=3600)
    running = parse_filter("state:running")

    def view(flt, limit=200):
        return source.jobs_view(JobsQuery(filter=flt, limit=limit), with_panes=False)

    assert view(running).matching == 0
    made = make_jobs(3, status="running")
    first = view(running)
    assert (first.matching, len(first.page.rows)) == (3, 3)
    make_jobs(13, status="running")
    shown = view(running)
    assert (shown.matching, len(shown.page.rows)) == (16, 16)
    partial = view(running, limit=5)  # more below: the cached count, never below the rows
    assert partial.page.more_below and partial.matching >= len(partial.page.rows) + 1
    Job.update(status="completed").where(Job.id.in_(made)).execute()
    after = view(running, limit=5)
    assert after.matching >= len(after.page.rows)
    assert view(running).matching == len(view(running).page.rows) == 13


def test_queue_task_worker_priority_and_text_filters(source):
    a = make_job(task="shop.send_email", queue="emails", priority=5, error_message="SMTP 554")
    b = make_job(task="shop.send_sms", queue="sms", status="running", worker_name="w-3")
    c = make_job(task="shop.report", queue="emails_low", priority=-1, title="Big [report]")
    assert page(source, "queue:emails") == [a]
    assert page(source, "queue:emails*") == [c, a]
    assert page(source, "!queue:emails") == [c, b]
    assert page(source, "task:shop.send_*") == [b, a]
    assert page(source, "task:*report") == [c]
    assert page(source, "worker:w-3") == [b]
    assert page(source, "!worker:w-3") == [c, a]
    assert page(source, "pri:>0") == [a]
    assert page(source, "pri:-1..0") == [c, b]
    assert page(source, "smtp") == [a]
    assert page(source, "[report]") == [c]
    assert page(source, "shop !sms") == [c, a]
    assert page(source, "100%") == []  # % is literal, not a wildcard


def test_user_tag_and_reference_filters(source):
    """The labels an application puts on its jobs find them again (both engines)."""
    import jobtui

    a = jobtui.enqueue("t", user_id="42", tags=["urgent", "eu"],
                       reference_type="order", reference_id="1001").id  # fmt: skip
    b = jobtui.enqueue("t", user_id="420", tags=["not-urgent"], reference_type="order",
                       reference_id="2002").id  # fmt: skip
    c = jobtui.enqueue("t", tags=['say "hi"\\'], reference_type="invoice", reference_id="1001").id
    assert page(source, "user:42") == [a]
    assert page(source, "user:42*") == [b, a]
    assert page(source, "!user:42") == [c, b]
    assert page(source, "tag:urgent") == [a]  # never the tag not-urgent
    assert page(source, "tag:eu,not-urgent") == [b, a]
    assert page(source, "!tag:urgent") == [c, b]
    assert page(source, "tag:'say \"hi\"\\'") == [c]  # quotes and a backslash, literally
    assert page(source, "ref:order") == [b, a]
    assert page(source, "ref:order:1001") == [a]
    assert page(source, "ref:*:1001") == []  # the type is a name, not a glob
    assert page(source, "ref:order:*2") == [b]
    assert page(source, "!ref:order") == [c]


def test_queue_filters_pick_a_walk_or_a_sort_by_the_counts(source, monkeypatch):
    monkeypatch.setattr(source_module, "COUNT_CAP", 3)
    monkeypatch.setattr(stats, "COUNT_CAP", 3)
    big = make_jobs(5, queue="big")
    small = make_job(queue="small")
    (dense,) = source._plan(parse_filter("queue:big"), utcnow())
    assert dense.status is None and dense.walk_ids  # dense: one walk of the id index
    plan = {str(b.status.rhs): b for b in source._plan(parse_filter("queue:big state:pending,failed"), utcnow())}  # fmt: skip
    assert plan["pending"].walk_ids and not plan["pending"].sort  # capped: big
    assert plan["failed"].sort and not plan["failed"].walk_ids  # none failed: sparse
    assert page(source, "queue:big") == list(reversed(big))
    assert page(source, "queue:big state:pending") == list(reversed(big))
    assert page(source, "queue:big", oldest_first=True) == big
    monkeypatch.setattr(source_module, "DENSE_WALK_ROWS", 0)
    sparse = source._plan(parse_filter("queue:small"), utcnow())
    # one sorted read per status, pending ones per index that holds them (not the status
    # index: the two claim indexes, and jobs_staged for those no claim has promoted yet)
    assert all(b.sort for b in sparse) and len(sparse) == 6 + len(READY_PARTS)
    assert page(source, "queue:small") == [small]
    assert page(source, "queue:small,big", limit=2) == [small, big[-1]]


def test_age_is_an_id_range(source):
    old = make_job()
    Job.update(id=id_floor(utcnow() - timedelta(hours=2))[:-4] + "beef").where(
        Job.id == old
    ).execute()
    new = make_job()
    (old_id,) = [j.id for j in Job.select().where(Job.id != new)]
    assert page(source, "age:>1h") == [old_id]
    assert page(source, "age:<1h") == [new]


def test_pinned_ids(source):
    jobs = make_jobs(4)
    assert page(source, ids=(jobs[0], jobs[2])) == [jobs[2], jobs[0]]
    assert page(source, "state:failed", ids=(jobs[0],)) == []


def test_queue_rows_counts_latency_pause_and_cap(source, monkeypatch):
    monkeypatch.setattr(stats, "COUNT_CAP", 3)
    make_jobs(5, queue="emails")
    make_job(queue="emails", status="failed")
    make_job(queue="later", run_at=utcnow() + timedelta(hours=1))
    Queue.create(name="paused-empty", paused=True)
    make_worker("s-w1", "s")
    rows = {q.name: q for q in source.queues_view().queues}
    assert list(rows) == ["emails", "later", "paused-empty"]
    assert rows["emails"].count("pending") == 3  # capped
    assert rows["emails"].count("failed") == 1
    assert rows["emails"].latency_s is not None and rows["emails"].latency_s >= 0
    assert rows["later"].latency_s is None  # nothing due yet
    assert rows["paused-empty"].paused and rows["emails"].concurrency == 2


def test_last_hour_strip_and_metrics(source, db):
    """The strip, the queue pane and the Metrics view read the rollup, exactly."""
    now = utcnow()
    with db.atomic():
        tally = Tally(now)
        for _ in range(3):  # waited 10 s, ran 10 s
            tally.add("q", "t", "completed", started_at=now - timedelta(seconds=10),
                      run_at=now - timedelta(seconds=20))  # fmt: skip
        tally.write(db)
        failed = Tally(now - timedelta(minutes=5))
        failed.add("q", "t", "failed")
        failed.write(db)
    make_job(queue="q", status="pending")
    view = source.jobs_view(JobsQuery())
    # (the last minute, or the one before when the clock just turned a minute)
    assert sum(view.strip.done_per_min) == 3 and sum(view.strip.done_per_min[-2:]) == 3
    assert sum(view.strip.failed_per_min) == 1 and sum(view.strip.failed_per_min[-7:-5]) == 1
    assert view.strip.wait_p95_s == pytest.approx(10, rel=0.1)
    assert {(q.name, q.done_last_hour, q.failed_last_hour) for q in view.queues} == {("q", 3, 1)}
    hour = source.metrics_view().windows[0]
    metrics = {(m.queue, m.task): m for m in hour.rows}
    total = metrics[("q", "")]
    assert (total.done, total.failed) == (3, 1)
    assert total.run_p50_s == pytest.approx(10, rel=0.1)
    assert [w.label for w in source.metrics_view().windows] == ["1h", "24h", "7d"]


def test_failures_group_by_type_and_fingerprint(source):
    for n in range(3):
        make_job(status="failed", error_type="ConnectionError",
                 error_message=f"refused for user{n}@example.com after {n + 1} tries")  # fmt: skip
    make_job(status="failed", error_type="KeyError", error_message="'sku-1'")
    view = source.failures_view()
    assert [(g.error_type, g.count) for g in view.groups] == [("ConnectionError", 3),
                                                              ("KeyError", 1)]  # fmt: skip
    assert view.groups[0].message == "refused for <email> after <n> tries"
    assert len(view.groups[0].job_ids) == 3


def test_scheduled_view(source):
    from jobtui.api import schedule

    schedule("every-15s", "* * * * * */15", "tests.tick")
    delayed = make_job(run_at=utcnow() + timedelta(minutes=5))
    make_job()  # due now: not delayed
    view = source.scheduled_view()
    (row,) = view.schedules
    assert row.name == "every-15s" and len(row.next_runs) == 3
    gaps = {(b - a).total_seconds() for a, b in zip(row.next_runs, row.next_runs[1:], strict=False)}
    assert gaps == {15.0}
    assert [d.id for d in view.delayed] == [delayed]
    Schedule.update(enabled=False).execute()
    assert source.scheduled_view().schedules[0].next_runs == ()  # paused: fires no more
    Schedule.update(cron="not a cron", enabled=True).execute()
    assert source.scheduled_view().schedules[0].next_runs == ()  # shown, never a crash


def test_a_retry_in_backoff_is_due_when_its_backoff_ends(source):
    """A retry keeps its place in line (run_at, its first due time) and waits out its
    backoff (next_retry_at): the console shows it due then, lists it under "due later",
    and does not count it in the queue's latency while it waits."""
    now = utcnow()
    backoff_ends = now + timedelta(minutes=3)
    retry = make_job(status="retrying", run_at=now - timedelta(hours=1),
                     next_retry_at=backoff_ends)  # fmt: skip
    (row,) = source.jobs_view(JobsQuery(limit=10)).page.rows
    assert row.id == retry and row.run_at == backoff_ends
    assert [d.id for d in source.scheduled_view().delayed] == [retry]
    (queue,) = source.queues_view().queues
    assert queue.latency_s is None  # nothing due: the retry still waits


def test_workers_stale_first_and_header_counts(source):
    job = make_job(status="running", progress_percentage=40)
    make_worker("s-w1", "s", job_id=job)
    make_worker("old-w1", "old", age_s=120)
    rows = source.workers_view().rows
    assert [r.name for r in rows] == ["old", "old-w1", "s", "s-w1"]
    assert rows[0].stale and not rows[2].stale
    assert (rows[3].current_task, rows[3].progress) == ("tests.task", 40.0)
    header = source.header()
    assert (header.supervisors_alive, header.supervisors_stale) == (1, 1)
    assert (header.workers_alive, header.workers_stale) == (1, 1)


def test_a_workers_job_is_read_from_the_jobs_table_not_its_last_heartbeat(source):
    done = make_job(status="running", worker_name="s-w1")
    make_worker("s-w1", "s", job_id=done)
    Job.update(status="completed").where(Job.id == done).execute()
    (worker,) = [r for r in source.workers_view().rows if r.name == "s-w1"]
    assert (worker.state, worker.current_job_id) == ("idle", None)
    assert source.worker_detail("s-w1").job is None
    now = make_job(status="running", worker_name="s-w1", progress_percentage=30)
    (worker,) = [r for r in source.workers_view().rows if r.name == "s-w1"]
    assert (worker.state, worker.current_job_id, worker.progress) == ("busy", now, 30.0)
    assert source.worker_detail("s-w1").job.id == now


def test_stale_means_three_of_its_own_supervisors_heartbeat_intervals(source):
    """8 s without a heartbeat: stale for a supervisor beating every second, not for one
    beating every 5 s (nor for a row that does not say: 15 s, 3 of the default)."""
    make_job()  # a queue to count the live workers of
    make_worker("fast-w1", "fast", age_s=8, interval_s=1)
    make_worker("slow-w1", "slow", age_s=8, interval_s=5)
    make_worker("older-w1", "older", age_s=8)
    stale = {r.name: r.stale for r in source.workers_view().rows}
    assert stale == {"fast": True, "fast-w1": True, "slow": False, "slow-w1": False,
                     "older": False, "older-w1": False}  # fmt: skip
    header = source.header()
    assert (header.supervisors_alive, header.supervisors_stale) == (2, 1)
    assert (header.workers_alive, header.workers_stale) == (2, 1)
    now = utcnow()
    (default,) = stats.queue_rows(source.db, now, read_window(source.db, now, HOUR))
    assert default.concurrency == 4  # the live supervisors' 2 workers each


def test_gone_rows_come_back_as_none(source):
    job = make_job(status="failed", error_message="x [/y]")
    assert source.job_detail(job).job.row.error == "x [/y]"
    Job.delete().where(Job.id == job).execute()
    assert source.job_detail(job).job is None
    make_worker("s-w1", "s")
    assert source.worker_detail("s-w1").worker is not None
    Worker.delete().execute()
    assert source.worker_detail("s-w1").worker is None


def test_matching_jobs_and_statuses(source):
    jobs = [make_job(status=s) for s in ("failed", "pending", "failed")]
    query = JobsQuery(filter=parse_filter("state:failed"))
    assert source.matching_jobs(query, 10) == [(jobs[2], "failed"), (jobs[0], "failed")]
    assert source.statuses(jobs) == dict(zip(jobs, ("failed", "pending", "failed"), strict=True))


def test_job_detail_shows_batch_progress_and_dependants(source):
    import jobtui

    with jobtui.batch() as group:
        first = jobtui.enqueue("t.a")
        jobtui.enqueue("t.b")
    waiting = jobtui.enqueue("t.c", depends_on=[first.id])
    Job.update(status="completed").where(Job.id == first.id).execute()
    detail = source.job_detail(first.id).job
    assert detail.batch_id == group.id and detail.batch_progress == "1/2 ended"
    assert detail.dependants == (waiting.id,)
    assert source.job_detail(waiting.id).job.batch_progress is None
    from jobtui.tui.screens.detail import overview_text

    text = overview_text(detail, utcnow()).plain
    assert f"batch      {group.id}  (1/2 ended)" in text
    assert f"dependants {waiting.id}" in text


def test_held_back_jobs_say_why_and_queues_show_their_limit_and_rate(source, db):
    """Issue 14: the Queues view's limit and rate, and a due job's held-back reason in the
    Jobs view and the detail (a rate, a full key), read from the database."""
    import jobtui
    from jobtui.models import claim_jobs
    from jobtui.models.key_limits import set_key_limit
    from jobtui.models.limits import set_queue_limit
    from jobtui.models.rates import set_rate

    rated = jobtui.enqueue_many("t", [{"args": [n]} for n in range(2)], queue="emails")
    keyed = jobtui.enqueue_many("t", [{"args": [n]} for n in range(2)], concurrency_key="c:42")
    later = jobtui.enqueue("t", queue="emails", delay=600)
    set_rate("emails", "10/m")
    set_queue_limit("emails", 3)
    set_key_limit("key:c:*", 1)
    assert len(claim_jobs(10)) == 2  # one of emails (the rate), one of key c:42
    view = source.jobs_view(JobsQuery(filter=parse_filter(""), limit=50), with_panes=False)
    rows = {r.id: r for r in view.page.rows}
    waiting_rated = [rows[j.id] for j in rated if rows[j.id].status == "pending"]
    waiting_keyed = [rows[j.id] for j in keyed if rows[j.id].status == "pending"]
    assert [r.held for r in waiting_rated] == ["rate 10/m on queue emails"]
    assert [r.held for r in waiting_keyed] == ["key c:42 at 1/1"]
    assert rows[later.id].held is None  # not due: its due time says why it waits
    detail = source.job_detail(waiting_keyed[0].id).job
    assert detail.row.held == "key c:42 at 1/1" and detail.concurrency_key == "c:42"
    queues = {q.name: q for q in source.queues_view().queues}
    assert (queues["emails"].limit, queues["emails"].rate) == (3, "10/m")
    assert (queues["default"].limit, queues["default"].rate) == (None, None)
