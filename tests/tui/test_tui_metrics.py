"""The Metrics view (issue 12): the last hour, 24 hours and 7 days from the rollup, exact,
with sparklines. Snapshots read a real SQLite rollup through the data source, with a
fixed clock; Pilot tests assert what the view holds."""

from __future__ import annotations

from datetime import timedelta

import pytest
from tui_fakes import FIXED_NOW, StaticSource
from tui_helpers import RecordingOperations, before, press, run_pilot, static_app

from jobtui.models import store
from jobtui.models.rollup import Tally
from jobtui.tui.app import JobtuiApp
from jobtui.tui.clock import FixedClock
from jobtui.tui.source import DataSource

#: (minutes before FIXED_NOW, queue, task, completed, failed, run s, wait s)
ENDS = [(m, "emails", "shop.send_email", 4_000 + 37 * (m % 11), 25 * (m % 4), 0.8, 0.3)
        for m in range(0, 60 * 24 * 7, 13)]  # fmt: skip
ENDS += [(m, "ingest", "etl.load_file", 1_200, 3 * (m % 5), 42.0, 12.0)
         for m in range(0, 60 * 30, 9)]  # fmt: skip
ENDS += [(m, "reports", "reports.nightly", 2, 1, 610.0, 0.05) for m in range(5, 60 * 24 * 7, 120)]


def _fill(db) -> None:
    """Rollup rows as the supervisor writes them (one Tally per minute), then folded as
    its upkeep would (minute rows older than two hours become hour rows)."""
    from jobtui.models.rollup import fold_rollup

    with db.atomic():
        for minutes, queue, task, done, failed, run_s, wait_s in ENDS:
            tally = Tally(FIXED_NOW - timedelta(minutes=minutes))
            started = tally.now - timedelta(seconds=run_s)
            tally.add(queue, task, "completed", started, started - timedelta(seconds=wait_s))
            vector = tally.groups[(queue, task)]
            for index, value in enumerate(list(vector)):  # scale one end up to ``done``
                vector[index] = value * done
            vector[1] = failed
            tally.write(db)
    while fold_rollup(db, FIXED_NOW):
        pass


@pytest.fixture
def rollup_app(tmp_path):
    url = f"sqlite:///{tmp_path / 'jobs.db'}"
    db = store.use_database(url)
    _fill(db)
    source = DataSource(db, url="sqlite:////var/lib/jobtui/jobs.db", clock=FixedClock(FIXED_NOW))
    app = JobtuiApp(source, operations=RecordingOperations(), clock=FixedClock(FIXED_NOW),
                    refresh_interval=None)  # fmt: skip
    yield app
    store.reset()


@pytest.mark.parametrize(("window", "keys"), [("1h", []), ("24h", ["w"]), ("7d", ["w", "w"])])
def test_metrics_windows_from_a_real_rollup(snap_compare, rollup_app, window, keys):
    assert snap_compare(rollup_app, terminal_size=(120, 40), run_before=before(["6", *keys]))


def test_w_cycles_the_windows_and_counts_show_in_full():
    async def scenario(pilot):
        await press(pilot, "6")
        screen = pilot.app.screen
        table = screen.query_one("#metrics-table")
        assert screen.selected == 0 and table.row_count == 5
        kpi = str(screen.query_one("#metrics-kpi").render())
        assert "442,000" in kpi and "10k+" not in kpi  # the 7d total, in full
        await press(pilot, "w")
        assert screen.selected == 1
        assert str(table.get_row_at(3)[2]) == "60,000"  # emails, 24h
        await press(pilot, "w", "w")
        assert screen.selected == 0

    run_pilot(static_app(StaticSource()), scenario)


def test_every_queue_is_listed_with_exact_counts(rollup_app):
    async def scenario(pilot):
        await press(pilot, "6", "w")  # 24 hours
        view = pilot.app.screen.data
        day = view.windows[1]
        rows = {(r.queue, r.task): r for r in day.rows}
        assert {q for q, t in rows if not t} == {"emails", "ingest", "reports"}
        # the window's first slot starts 23 hours before the hour of now (12:00)
        done = sum(d for m, q, _, d, *_ in ENDS if q == "emails" and m <= 23 * 60)
        failed = sum(f for m, q, _, _, f, *_ in ENDS if q == "emails" and m <= 23 * 60)
        assert (rows[("emails", "")].done, rows[("emails", "")].failed) == (done, failed)
        assert done > 10_000
        assert rows[("ingest", "")].run_p50_s == pytest.approx(42.0)
        assert rows[("reports", "reports.nightly")].run_p95_s == pytest.approx(610.0)

    run_pilot(rollup_app, scenario)
