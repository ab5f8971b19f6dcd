"""Issue 15, item 4: the console marks a queue in alert (the Queues view and the Jobs
view's queue pane), on a real database with an alert row a supervisor would write."""

from __future__ import annotations

import pytest
from tui_dbjobs import db_app, make_job
from tui_fakes import FIXED_NOW, QUEUES, StaticSource
from tui_helpers import before, press, run_pilot, settle, static_app

from jobtui.models.alert import change_alert
from jobtui.models.clock import utcnow
from jobtui.models.store import get_database
from jobtui.tui.screens.queues import QueuesScreen
from jobtui.tui.snapshot import QueuesView


def _cell_text(app, table_id: str, key: str, column: int = 0) -> str:
    table = app.screen.query_one(table_id)
    return str(table.get_row(key)[column])


def test_a_queue_in_alert_is_marked_and_its_alert_named(db):
    make_job(queue="emails")
    make_job(queue="reports")
    change_alert(get_database(), "wait", "emails", True, 42.0, 30.0, utcnow())

    async def scenario(pilot):
        await settle(pilot)
        assert _cell_text(pilot.app, "#queue-pane", "emails") == "⚠ emails"
        assert _cell_text(pilot.app, "#queue-pane", "reports") == "reports"
        await press(pilot, "2")
        assert isinstance(pilot.app.screen, QueuesScreen)
        assert _cell_text(pilot.app, "#queues-table", "emails") == "⚠ emails"
        hint = str(pilot.app.screen.query_one("#queues-hint").render())
        assert "in alert: emails: waited 42s > 30s" in hint
        change_alert(get_database(), "wait", "emails", False, 0.0, 30.0, utcnow())
        await press(pilot, "ctrl+r")
        await settle(pilot)
        assert _cell_text(pilot.app, "#queues-table", "emails") == "emails"
        assert "in alert" not in str(pilot.app.screen.query_one("#queues-hint").render())

    run_pilot(db_app(db), scenario)


class AlertingSource(StaticSource):
    def queues_view(self) -> QueuesView:
        self._check("queues_view")
        emails = QUEUES[1]
        marked = type(emails)(**{**emails.__dict__, "alerts": (("wait", 380.0, 300.0),
                                                                ("failure_rate", 1.3, 1.0))})  # fmt: skip
        return QueuesView(now=FIXED_NOW, queues=(QUEUES[0], marked, *QUEUES[2:]))


@pytest.mark.parametrize("size", [(120, 40), (80, 24)], ids=["120x40", "80x24"])
def test_queues_view_in_alert(snap_compare, size):
    assert snap_compare(static_app(AlertingSource()), terminal_size=size,
                        run_before=before(["2"]))  # fmt: skip
