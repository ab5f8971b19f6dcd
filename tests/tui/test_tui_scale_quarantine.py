"""The console's parts of live scaling and crash-loop quarantine, driven by keys on a real
database (SQLite and PostgreSQL): ``W`` in the Queues and Workers views asks the
supervisor for N workers and reports what it applied; the Failures view marks quarantined
jobs, and retrying one resets its crash count."""

from __future__ import annotations

import threading
import time

from tui_dbjobs import db_app, make_job, make_worker
from tui_helpers import press, run_pilot

from jobtui.models import Job
from jobtui.models.audit import AuditEntry
from jobtui.models.scaling import read_scale_request, write_scaled
from jobtui.models.worker import Supervisor
from jobtui.tui.screens.failures import QUARANTINE_MARK
from jobtui.tui.screens.scale_form import ScaleScreen, parse_scale_form
from jobtui.tui.widgets.keyed_table import KeyedTable


def toasts(app) -> list[str]:
    return [n.message for n in app._notifications]


class FakeSupervisorSide(threading.Thread):
    """Applies scale requests on supervisor ``name``'s row as the supervisor would (its
    own loop is tested end to end in tests/e2e/test_supervisor_scaling.py)."""

    def __init__(self, db, name: str, queues: dict[str, int]) -> None:
        super().__init__(daemon=True)
        self.db, self.name, self.queues = db, name, dict(queues)
        self.applied: list[dict[str, int]] = []
        self.stop = threading.Event()

    def run(self) -> None:
        try:
            while not self.stop.is_set():
                request = read_scale_request(self.db, self.name)
                if request:
                    self.queues.update(request)
                    write_scaled(self.db, self.name, 100, self.queues, request)
                    self.applied.append(request)
                time.sleep(0.02)
        finally:
            self.db.close()


def _serving(db, queues: dict[str, int]) -> FakeSupervisorSide:
    make_worker("sup-1/w1", "sup-1")
    Supervisor.update(queues=queues).where(Supervisor.name == "sup-1").execute()
    side = FakeSupervisorSide(db, "sup-1", queues)
    side.start()
    return side


def test_w_in_the_queues_view_scales_the_queue_on_its_supervisor(db):
    make_job(queue="emails")
    side = _serving(db, {"emails": 1, "*": 2})

    async def scenario(pilot):
        await press(pilot, "2")
        table = pilot.app.screen.query_one("#queues-table", KeyedTable)
        assert table.current_key() == "emails"
        await press(pilot, "W")
        assert isinstance(pilot.app.screen, ScaleScreen)
        await press(pilot, "4", "enter")
        assert not isinstance(pilot.app.screen, ScaleScreen)
        assert side.applied == [{"emails": 4}]
        assert Supervisor.get_by_id("sup-1").queues == {"emails": 4, "*": 2}
        assert any("sup-1: queue emails 1 -> 4 worker(s)" in t for t in toasts(pilot.app))
        [row] = AuditEntry.select()  # the action is audited once, from the console
        assert (row.action, row.target, row.where) == ("scale", "emails", "console")
        assert row.arguments == {"supervisor": "sup-1", "workers": 4}

    try:
        run_pilot(db_app(db), scenario)
    finally:
        side.stop.set()
        side.join(5)


def test_w_in_the_workers_view_starts_from_the_highlighted_group(db):
    side = _serving(db, {"*": 2})

    async def scenario(pilot):
        await press(pilot, "3")
        table = pilot.app.screen.query_one("#workers-table", KeyedTable)
        assert table.current_key() == "sup-1"  # the supervisor's row, then its worker
        await press(pilot, "W")
        form = pilot.app.screen
        assert isinstance(form, ScaleScreen) and form.initial == ("*", "sup-1", "2")
        await press(pilot, "backspace", "x", "enter")  # not a number: said on the form
        assert isinstance(pilot.app.screen, ScaleScreen)
        assert "not a whole number" in str(form.query_one("#form-error").render())
        await press(pilot, "backspace", "1", "enter")
        assert side.applied == [{"*": 1}]
        assert any("queue * 2 -> 1 worker(s) (the extra ones stop after their current job)"
                   in t for t in toasts(pilot.app))  # fmt: skip

    try:
        run_pilot(db_app(db), scenario)
    finally:
        side.stop.set()
        side.join(5)


def test_scaling_a_queue_nobody_serves_is_refused_in_a_toast(db):
    make_job(queue="emails")

    async def scenario(pilot):
        await press(pilot, "2", "W", "3", "enter")
        assert any("no live supervisor serves queue 'emails'" in t for t in toasts(pilot.app))
        assert AuditEntry.select().count() == 0  # a refused action writes no row

    run_pilot(db_app(db), scenario)


def test_read_only_has_no_scale(db):
    make_job(queue="emails")

    async def scenario(pilot):
        await press(pilot, "2", "W")
        assert not isinstance(pilot.app.screen, ScaleScreen)

    run_pilot(db_app(db, read_only=True), scenario)


def test_the_form_checks_its_fields():
    assert parse_scale_form(" emails ", " 3 ", "") == parse_scale_form("emails", "3")
    for args, words in ((("", "3"), "name the queue"), (("q", "-1"), "from 0 to 256"),
                        (("q", "257"), "from 0 to 256"), (("q", "2.5"), "not a whole number")):  # fmt: skip
        try:
            parse_scale_form(*args)
        except ValueError as exc:
            assert words in str(exc)
        else:
            raise AssertionError(f"{args} accepted")


def test_quarantined_jobs_are_marked_and_a_retry_resets_their_count(db):
    quarantined = make_job(task="tests.render", status="failed", error_type="Quarantined",
                           error_message="quarantined: killed its worker 2 times (SIGKILL, "
                           "peak RSS 812 MB)", crash_count=2, retry_count=1)  # fmt: skip
    make_job(task="tests.other", status="failed")

    async def scenario(pilot):
        await press(pilot, "4")
        table = pilot.app.screen.query_one("#failures-table", KeyedTable)
        cells = [table.get_row_at(i)[1].plain for i in range(table.row_count)]
        assert sorted(cells) == sorted([QUARANTINE_MARK, "RuntimeError"])
        while pilot.app.screen.groups[table.current_key()].error_type != "Quarantined":
            await press(pilot, "down")
        await press(pilot, "enter", "R")
        row = Job.get_by_id(quarantined)
        assert (row.status, row.crash_count, row.retry_count) == ("pending", 0, 0)

    run_pilot(db_app(db), scenario)
