"""Cron through real supervisors: every supervisor runs the scheduler, and each fire time
of a six-field (per-second) schedule yields exactly one job, with no gaps."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta

import pytest
from workflow_helpers import FAST, supervisors, wait_for

import jobtui
from jobtui.models import Job, Schedule, ScheduleFire
from jobtui.models.clock import utcnow

TICK = "workflow_cron_tasks.tick"
EVERY_2S = "every-2s"
OBSERVE_TICKS = 4


def _scheduled(name: str) -> list:
    rows = Job.select(Job.id, Job.scheduled_for).where(Job.schedule_name == name)
    return sorted(rows, key=lambda j: j.scheduled_for)


def _check_one_job_per_tick(name: str, step: timedelta) -> list:
    jobs = _scheduled(name)
    times = [j.scheduled_for for j in jobs]
    fires = list(ScheduleFire.select().where(ScheduleFire.schedule == name))
    assert len(set(times)) == len(times), "two jobs for one fire time"
    assert len(fires) == len(jobs), "a fire without its job, or a job without its fire"
    assert {f.job_id for f in fires} == {j.id for j in jobs}
    assert sorted(f.fire_time for f in fires) == times
    gaps = [(a, b) for a, b in zip(times, times[1:], strict=False) if b - a != step]
    assert gaps == [], f"missed fire times: {gaps}"
    return times


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    ("db_url", "count"),
    [("sqlite", 2), ("sqlite", 5), ("postgresql", 3)],
    indirect=["db_url"],
    ids=["sqlite-2", "sqlite-5", "postgresql-3"],
)
def test_each_fire_time_yields_one_job_under_many_supervisors(db, db_url, tmp_path, count):
    jobtui.schedule(EVERY_2S, "* * * * * */2", "workflow_cron_tasks.noop", args=["x"])
    with supervisors(db_url, tmp_path) as group:
        group.start("--import", "workflow_cron_tasks", "--workers", "1",
                    "--poll-interval", "0.2", *FAST, count=count)  # fmt: skip
        row = wait_for(lambda: Schedule.get_or_none(Schedule.name == TICK), what="@task(cron)")
        assert (row.cron, row.job_type) == ("* * * * * *", TICK)
        all_up = utcnow()

        def observed() -> bool:  # fired and run: a stop must not catch the last one queued
            ran = (Job.select().where(Job.schedule_name == TICK, Job.status == "completed",
                                      Job.scheduled_for > all_up).count())  # fmt: skip
            return ran >= OBSERVE_TICKS

        wait_for(observed, 20, 0.1, what=f"{OBSERVE_TICKS} ticks with all supervisors up")
        group.stop()
        logs = group.logs()
    times = _check_one_job_per_tick(TICK, timedelta(seconds=1))
    # from the first tick after the first supervisor declared it: the others' starts
    # (each declares it again) lost no tick
    assert times[0] == row.created_at.replace(microsecond=0) + timedelta(seconds=1)
    assert len(_check_one_job_per_tick(EVERY_2S, timedelta(seconds=2))) >= 2
    fired_by = {line.split()[-1] for line in logs.splitlines() if " fired for " in line}
    assert len(fired_by) == len(_scheduled(TICK)) + len(_scheduled(EVERY_2S))
    trouble = [line for line in logs.splitlines() if "loop error" in line or "deadlock" in line]
    assert trouble == [], logs
    done = Job.select().where(Job.schedule_name == TICK, Job.status == "completed").count()
    assert done >= OBSERVE_TICKS  # and the jobs ran


@pytest.mark.timeout(30)
def test_an_invalid_task_cron_stops_the_supervisor_with_the_reason(db, db_url, tmp_path):
    (tmp_path / "bad_cron_tasks.py").write_text(
        "from jobtui import task\n\n@task(cron='61 * * * *')\ndef nightly():\n    pass\n"
    )
    proc = subprocess.run(
        [sys.executable, "-m", "jobtui.supervisor.main", "--import", "bad_cron_tasks"],
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(tmp_path), "JOBTUI_DATABASE": db_url},
        capture_output=True, text=True, timeout=25,
    )  # fmt: skip
    assert proc.returncode == 1
    assert "bad cron expression '61 * * * *'" in proc.stderr and "out of range" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert Schedule.select().count() == 0
