"""Cron schedules at the model level: validation, DST, the fire record, catch-up, clock jumps.

``fire_due_schedules(db, now=...)`` takes the clock as a parameter, so a jump forward or
backward is a call with another ``now``; ``upsert_schedule`` reads ``utcnow`` from its
module, patched where a test needs a fixed creation time.
"""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

import pytest

import jobtui
from jobtui import InvalidJob
from jobtui.models import Job, Schedule, ScheduleFire
from jobtui.models import scheduling as sched
from jobtui.models.dialect import dialect_for
from jobtui.models.scheduling import fire_due_schedules, fire_times
from jobtui.registry import Task, TaskRegistry
from jobtui.supervisor.startup import _declare_task_schedules

BERLIN = "Europe/Berlin"
EVERY_SECOND = "* * * * * *"


def _fire(db, now: datetime) -> list:
    with dialect_for(db).write_transaction(db):
        return fire_due_schedules(db, now)


def _jobs(name: str) -> list[Job]:
    return list(Job.select().where(Job.schedule_name == name).order_by(Job.scheduled_for))


def _at(monkeypatch, moment: datetime) -> None:
    """Pin the clock ``upsert_schedule`` reads."""
    monkeypatch.setattr(sched, "utcnow", lambda: moment)


def _next_fire(name: str) -> datetime:
    return Schedule.get_by_id(name).next_fire_at


# ------------------------------------------------------------------ fire_times and DST


def test_fixed_time_fires_once_on_each_dst_change_day():
    spring = fire_times("30 2 * * *", BERLIN, datetime(2026, 3, 28, 12), datetime(2026, 3, 30, 12))
    # 02:30 does not exist on 29 March: the first moment after the gap (03:00 CEST = 01:00Z).
    assert spring == [datetime(2026, 3, 29, 1, 0), datetime(2026, 3, 30, 0, 30)]
    autumn = fire_times(
        "30 2 * * *", BERLIN, datetime(2026, 10, 24, 12), datetime(2026, 10, 26, 12)
    )
    # 02:30 happens twice on 25 October (CEST 00:30Z, then CET 01:30Z): only the first fires.
    assert autumn == [datetime(2026, 10, 25, 0, 30), datetime(2026, 10, 26, 1, 30)]
    # a restart between the two 02:30s does not fire the repeated one either
    assert fire_times("30 2 * * *", BERLIN, datetime(2026, 10, 25, 0, 45),
                      datetime(2026, 10, 25, 12)) == []  # fmt: skip


@pytest.mark.parametrize("day", [datetime(2026, 3, 28, 20), datetime(2026, 10, 24, 20)])
def test_wildcard_hour_follows_real_elapsed_time_across_dst(day):
    ticks = fire_times("*/30 * * * *", BERLIN, day, day + timedelta(hours=10))
    assert len(ticks) == 20  # 10 real hours, every 30 minutes: no double, no gap
    assert {b - a for a, b in zip(ticks, ticks[1:], strict=False)} == {timedelta(minutes=30)}


def test_six_field_expression_has_seconds_and_timezones_shift_fixed_times():
    start = datetime(2026, 5, 1, 12, 0, 0)
    assert fire_times("* * * * * */2", "UTC", start, start + timedelta(seconds=7)) == [
        start + timedelta(seconds=s) for s in (2, 4, 6)
    ]
    # 09:00 in Berlin in summer is 07:00 UTC; in New York 13:00 UTC
    assert fire_times("0 9 * * *", BERLIN, start, start + timedelta(days=1)) == [
        datetime(2026, 5, 2, 7)
    ]
    assert fire_times("0 9 * * *", "America/New_York", start, start + timedelta(days=1)) == [
        datetime(2026, 5, 1, 13)
    ]


# ------------------------------------------------------------------ creating schedules


@pytest.mark.parametrize(
    ("cron", "reason"),
    [
        ("61 * * * *", "out of range"),
        ("*/0 * * * *", "step '0'"),
        ("* * * *", "expected 5 or 6 fields"),
        ("* * * * * 99", "out of range"),
        ("0 0 31 2 *", "never fires"),  # valid syntax, no date matches
    ],
)
def test_schedule_refuses_an_invalid_expression_with_the_reason(db, cron, reason):
    with pytest.raises(InvalidJob, match=reason):
        jobtui.schedule("bad", cron, "t")
    assert Schedule.select().count() == 0


def test_schedule_refuses_unknown_timezone_policy_and_option(db):
    with pytest.raises(InvalidJob, match="unknown timezone"):
        jobtui.schedule("s", "* * * * *", "t", timezone="Mars/Olympus")
    with pytest.raises(InvalidJob, match="catch_up"):
        jobtui.schedule("s", "* * * * *", "t", catch_up="all")
    assert Schedule.select().count() == 0


def test_schedule_upserts_by_name_and_its_jobs_carry_the_options(db):
    first = jobtui.schedule("report", "0 2 * * *", "t.report", args=[1], queue="reports")
    again = jobtui.schedule("report", "* * * * * */5", "t.report", args=[2], queue="reports",
                            priority=4)  # fmt: skip
    assert Schedule.select().count() == 1
    row = Schedule.get_by_id("report")
    assert (row.cron, row.args, row.options["queue"], row.options["priority"]) == (
        "* * * * * */5", [2], "reports", 4)  # fmt: skip
    assert again <= first and again.second % 5 == 0  # recomputed for the new expression
    _fire(db, again)
    (job,) = _jobs("report")
    assert (job.job_type, job.args, job.queue_name, job.priority, job.scheduled_for) == (
        "t.report", [2], "reports", 4, again)  # fmt: skip


def test_task_cron_declares_a_schedule_named_after_the_task(db):
    tasks = TaskRegistry()
    tasks.register(Task(func=lambda: None, name="app.tick", cron="*/3 * * * * *",
                        defaults={"queue": "ticks"}))  # fmt: skip
    tasks.register(Task(func=lambda: None, name="app.plain"))
    _declare_task_schedules(db, tasks)
    (row,) = Schedule.select()
    assert (row.name, row.job_type, row.cron, row.options) == (
        "app.tick", "app.tick", "*/3 * * * * *", {"queue": "ticks"})  # fmt: skip


# ------------------------------------------------------------------ the fire record


def test_each_tick_fires_once_however_many_schedulers_race(db):
    start = jobtui.schedule("race", EVERY_SECOND, "t")
    now = start + timedelta(seconds=4)
    errors: list[BaseException] = []

    def scheduler() -> None:
        try:
            _fire(db, now)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            db.close()

    threads = [threading.Thread(target=scheduler) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not errors
    fires = ScheduleFire.select().where(ScheduleFire.schedule == "race").count()
    jobs = _jobs("race")
    assert fires == len(jobs) == 5
    assert [j.scheduled_for for j in jobs] == [start + timedelta(seconds=s) for s in range(5)]


@pytest.mark.parametrize("back", [timedelta(seconds=5), timedelta(seconds=70)])
def test_jump_backward_makes_no_duplicate(db, back):
    start = jobtui.schedule("back", EVERY_SECOND, "t")
    passes = [start + timedelta(seconds=s) for s in range(0, 81, 5)]
    for now in passes:  # 80 s of a running scheduler, a pass every 5 s
        _fire(db, now)
    assert len(_jobs("back")) == 81
    for now in passes:  # the clock is set back and runs over those 80 s again
        if now >= passes[-1] - back:
            assert _fire(db, now) == []
    assert len(_fire(db, passes[-1] + timedelta(seconds=1))) == 1  # then on, as before
    jobs = _jobs("back")
    fires = ScheduleFire.select().where(ScheduleFire.schedule == "back").count()
    assert len({j.scheduled_for for j in jobs}) == len(jobs) == fires == 82


@pytest.mark.parametrize(("cron", "most"), [(EVERY_SECOND, sched.ON_TIME_WINDOW_S + 1),
                                            ("* * * * *", 1)])  # fmt: skip
def test_jump_forward_under_skip_makes_no_burst(db, cron, most):
    """Only the ticks still on time (ON_TIME_WINDOW_S) fire: never one per missed tick."""
    start = jobtui.schedule("fwd", cron, "t", catch_up="skip")
    _fire(db, start)
    later = start + timedelta(days=1, seconds=0.5)
    assert len(_fire(db, later)) <= most
    upcoming = _next_fire("fwd")
    assert later < upcoming <= later + timedelta(minutes=1)
    assert len(_fire(db, upcoming)) == 1  # and it keeps firing


@pytest.mark.parametrize("cron", [EVERY_SECOND, "* * * * *"])
def test_jump_forward_under_once_makes_one_job_for_the_latest_tick(db, cron):
    start = jobtui.schedule("once", cron, "t", catch_up="once")
    _fire(db, start)
    later = start + timedelta(hours=3, seconds=0.5)
    fired = _fire(db, later)
    step = timedelta(seconds=1) if cron == EVERY_SECOND else timedelta(minutes=1)
    assert [f[1] for f in fired] == [fire_times(cron, "UTC", later - step, later)[-1]]
    assert len(_jobs("once")) == 2


def test_once_does_not_reach_past_its_window(db):
    start = jobtui.schedule("monthly", "0 0 1 * *", "t", catch_up="once")
    # the latest missed tick is ~9 days old: older than the catch-up window
    assert _fire(db, start + timedelta(days=40)) == []
    assert _next_fire("monthly") > start + timedelta(days=40)


def test_transient_jump_forward_does_not_stall_the_schedule(db):
    """The clock leaps a day ahead and is corrected back (NTP, a resumed VM)."""
    start = jobtui.schedule("ntp", EVERY_SECOND, "t")
    _fire(db, start)
    _fire(db, start + timedelta(days=1))  # next_fire_at is now a day ahead
    assert len(_fire(db, start + timedelta(seconds=3))) >= 1  # corrected: it fires again


def test_restart_redeclaring_a_schedule_keeps_its_missed_tick(db, monkeypatch):
    """``@task(cron=)`` upserts at every supervisor start; after downtime the catch-up
    policy must still see the tick missed while no supervisor ran."""
    _at(monkeypatch, datetime(2030, 1, 1, 0, 30))
    jobtui.schedule("hourly", "0 * * * *", "t", catch_up="once")
    assert _next_fire("hourly") == datetime(2030, 1, 1, 1, 0)
    _at(monkeypatch, datetime(2030, 1, 1, 1, 30))  # down from 00:45 to 01:30
    jobtui.schedule("hourly", "0 * * * *", "t", catch_up="once")  # the restart
    fired = _fire(db, datetime(2030, 1, 1, 1, 30))
    assert [f[1] for f in fired] == [datetime(2030, 1, 1, 1, 0)]
    jobtui.schedule("hourly", "30 * * * *", "t", catch_up="once")  # a new expression
    assert _next_fire("hourly") == datetime(2030, 1, 1, 2, 30)  # recomputes


@pytest.mark.parametrize(
    ("start", "expected"),
    [(datetime(2026, 3, 28, 22), datetime(2026, 3, 29, 1, 0)),
     (datetime(2026, 10, 24, 22), datetime(2026, 10, 25, 0, 30))],
)  # fmt: skip
def test_a_night_of_passes_across_a_dst_change_fires_once(db, monkeypatch, start, expected):
    _at(monkeypatch, start)
    jobtui.schedule("night", "30 2 * * *", "t", timezone=BERLIN)
    for minute in range(0, 6 * 60, 5):
        _fire(db, start + timedelta(minutes=minute, seconds=1))
    assert [j.scheduled_for for j in _jobs("night")] == [expected]


def test_redeclaring_a_task_schedule_keeps_an_operators_pause(db):
    tasks = TaskRegistry()
    tasks.register(Task(func=lambda: None, name="app.tick", cron="*/3 * * * * *"))
    _declare_task_schedules(db, tasks)
    sched.set_schedule_enabled("app.tick", False)  # jobtui schedule pause app.tick
    _declare_task_schedules(db, tasks)  # a supervisor restarts
    assert Schedule.get_by_id("app.tick").enabled is False


def test_disabled_schedule_does_not_fire_and_run_now_is_outside_the_record(db):
    from jobtui.models.scheduling import run_schedule_now, set_schedule_enabled

    start = jobtui.schedule("paused", EVERY_SECOND, "t")
    set_schedule_enabled("paused", False)
    assert _fire(db, start + timedelta(seconds=1)) == []
    job_id = run_schedule_now("paused")
    assert Job.get_by_id(job_id).schedule_name == "paused"
    assert ScheduleFire.select().count() == 0
