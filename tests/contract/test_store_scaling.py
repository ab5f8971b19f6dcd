"""Live scaling's requests through the supervisors table (models/scaling.py): one suite,
SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest

from jobtui.models.clock import utcnow
from jobtui.models.heartbeats import register_supervisor
from jobtui.models.scaling import (
    ScaleError,
    check_count,
    describe_queues,
    live_supervisors,
    pick_supervisor,
    read_scale_request,
    register_scaling,
    request_scale,
    wait_applied,
    write_scaled,
)
from jobtui.models.worker import Supervisor


def _supervisor(db, name, queues, autoscale=None, pid=100):
    with db.atomic():
        register_supervisor(db, {"name": name, "host": "h", "pid": pid, "state": "running",
                                 "process_started_at": None, "tasks": [], "version": "t",
                                 "queues": queues, "heartbeat_interval_s": 5.0})  # fmt: skip
        register_scaling(db, name, autoscale or {})


def test_a_request_is_merged_applied_and_taken_out(db):
    _supervisor(db, "a", {"emails": 1, "*": 2}, {"emails": (1, 8)})
    target = pick_supervisor(db, "emails")
    assert target["name"] == "a" and target["autoscale"] == {"emails": (1, 8)}
    request_scale(db, "a", "emails", 4)
    request_scale(db, "a", "*", 3)
    assert read_scale_request(db, "a") == {"emails": 4, "*": 3}
    assert wait_applied(db, "a", "emails", 4, 0.05) is None  # not applied yet: timed out
    # the supervisor applied emails=4 only; a newer request for * stays
    write_scaled(db, "a", 100, {"emails": 4, "*": 2}, {"emails": 4})
    assert read_scale_request(db, "a") == {"*": 3}
    applied = wait_applied(db, "a", "emails", 4, 1.0)
    assert applied == {"queues": {"emails": 4, "*": 2}, "autoscale": {"emails": (1, 8)}}
    request_scale(db, "a", "*", 5)  # asked again before it handled the first
    write_scaled(db, "a", 100, {"emails": 4, "*": 3}, {"*": 3})
    assert read_scale_request(db, "a") == {"*": 5}  # the newer ask is kept
    write_scaled(db, "a", 100, {"emails": 4, "*": 5}, {"*": 5})
    assert Supervisor.get_by_id("a").scale_request is None
    assert describe_queues(Supervisor.get_by_id("a").queues, {"emails": [1, 8]}) == (
        "emails=4 (auto 1-8), *=5")  # fmt: skip


def test_a_refused_request_and_a_stopped_supervisor_are_said(db):
    _supervisor(db, "a", {"emails": 1})
    request_scale(db, "a", "other", 2)
    write_scaled(db, "a", 100, {"emails": 1}, {"other": 2})  # it does not serve it
    with pytest.raises(ScaleError, match="refused: it does not serve queue 'other'"):
        wait_applied(db, "a", "other", 2, 1.0)
    with db.atomic():
        db.execute_sql("DELETE FROM supervisors WHERE name = 'a'")
    with pytest.raises(ScaleError, match="stopped"):
        request_scale(db, "a", "emails", 2)


def test_which_supervisor_serves_a_queue(db):
    with pytest.raises(ScaleError, match="no live supervisor serves queue 'emails'"):
        pick_supervisor(db, "emails")
    _supervisor(db, "dedicated", {"emails": 1})
    _supervisor(db, "bare", {"a,b": 2})
    _supervisor(db, "shared", {"*": 2})
    _supervisor(db, "stale", {"emails": 1})
    old = utcnow() - timedelta(seconds=60)
    with db.atomic():
        Supervisor.update(heartbeat_at=old).where(Supervisor.name == "stale").execute()
    assert [s["name"] for s in live_supervisors(db)] == ["bare", "dedicated", "shared"]
    with pytest.raises(ScaleError, match=r"2 live supervisors serve queue 'emails' \(dedicated, "
                                         r"shared\): name one with --supervisor"):  # fmt: skip
        pick_supervisor(db, "emails")
    with pytest.raises(ScaleError, match="2 live supervisors"):
        pick_supervisor(db, "b")  # bare serves it, and so do the shared workers
    assert pick_supervisor(db, "emails", "dedicated")["name"] == "dedicated"
    with pytest.raises(ScaleError, match="does not serve queue 'zzz'"):
        pick_supervisor(db, "zzz", "dedicated")
    with pytest.raises(ScaleError, match="no live supervisor named 'stale'"):
        pick_supervisor(db, "emails", "stale")


def test_counts_are_checked_against_the_bounds():
    target = {"name": "a", "autoscale": {"emails": (1, 8)}}
    check_count(target, "emails", 8)
    check_count(target, "other", 0)
    for count, words in ((9, "autoscales from 1 to 8"), (0, "autoscales from 1 to 8"),
                         (257, "from 0 to 256"), (-1, "from 0 to 256")):  # fmt: skip
        with pytest.raises(ScaleError, match=words):
            check_count(target, "emails", count)
