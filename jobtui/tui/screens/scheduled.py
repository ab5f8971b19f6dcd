"""View 5, Scheduled: cron schedules (next runs, last run and its outcome) and the jobs
waiting for a later time (scheduled, or backing off before a retry)."""

from __future__ import annotations

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Static

from .. import formatting as fmt
from ..columns import Column
from ..snapshot import DelayedRow, ScheduledView, ScheduleRow, Source
from ..widgets.keyed_table import KeyedTable, TableRow
from .base import ViewScreen

SCHEDULE_COLUMNS = (Column("schedule", "name", 18, grow=1, min_width=16), ("cron", "cron", 14),
                    Column("task", "task", 22, grow=2, min_width=12, clip="left"),
                    Column("next runs", "next", 26, grow=1, min_width=12), ("last run", "last", 9),
                    ("outcome", "outcome", 10), ("on", "enabled", 3))  # fmt: skip
DELAYED_COLUMNS = (("id", "id", 8), Column("task", "task", 24, grow=2, min_width=12, clip="left"),
                   Column("queue", "queue", 10, grow=1, min_width=6),
                   ("kind", "kind", 9), ("due", "due", 9), ("pri", "pri", 4),
                   ("retries", "retries", 7))  # fmt: skip


def schedule_cells(row: ScheduleRow, now) -> tuple[Text, ...]:
    """A paused schedule fires no more: it shows "paused" where the next runs go."""
    runs = ", ".join(fmt.age(moment, now) for moment in row.next_runs) or "—"
    if not row.enabled:
        runs = "paused"
    outcome = row.last_outcome or ("gone" if row.last_job_id else "—")
    return (fmt.text(fmt.line(row.name), "bold"), fmt.text(row.cron),
            fmt.text(fmt.line(row.task)), fmt.text(runs),
            fmt.text(fmt.age(row.last_fire_at, now)),
            fmt.text(outcome, fmt.STATE_STYLES.get(outcome, "dim")),
            fmt.text("✓" if row.enabled else "✗", "green" if row.enabled else "red"))  # fmt: skip


def delayed_cells(row: DelayedRow, now) -> tuple[Text, ...]:
    kind = "retry" if row.status == "retrying" else "delayed"
    return (fmt.text(fmt.short_id(row.id)), fmt.text(fmt.line(row.task)),
            fmt.text(fmt.line(row.queue)),
            fmt.text(kind, fmt.STATE_STYLES.get(row.status, "")),
            fmt.text(fmt.age(row.run_at, now)), fmt.text(row.priority),
            fmt.text(row.retry_count))  # fmt: skip


class ScheduledScreen(ViewScreen):
    VIEW = "Scheduled"
    BINDINGS = [Binding("p", "toggle_schedule", "Pause/resume"),
                Binding("n", "run_schedule_now", "Run now")]  # fmt: skip
    PALETTE = (("Schedule: pause / resume", "pause or resume the schedule under the cursor (p)",
                "toggle_schedule"),
               ("Schedule: run now", "enqueue the job of the schedule under the cursor (n)",
                "run_schedule_now"))  # fmt: skip

    def __init__(self) -> None:
        super().__init__()
        self.schedules: dict[str, ScheduleRow] = {}

    def compose_body(self) -> ComposeResult:
        yield Static(Text("Cron schedules", style="bold"), classes="section")
        yield KeyedTable(SCHEDULE_COLUMNS, id="schedules-table")
        yield Static(Text("Due later (delayed, or waiting out a retry backoff) — enter opens",
                          style="bold"), classes="section")  # fmt: skip
        yield KeyedTable(DELAYED_COLUMNS, id="delayed-table")

    def on_mount(self) -> None:
        self.query_one("#schedules-table").focus()

    def fetch(self, source: Source) -> ScheduledView:
        return source.scheduled_view()

    def show(self, data: ScheduledView) -> None:
        self.schedules = {s.name: s for s in data.schedules}
        self.query_one("#schedules-table", KeyedTable).sync([
            TableRow(s.name, schedule_cells(s, data.now),
                     (s.name, s.cron, s.task, s.next_runs[0] if s.next_runs else None,
                      s.last_fire_at, s.last_outcome, s.enabled))
            for s in data.schedules])  # fmt: skip
        self.query_one("#delayed-table", KeyedTable).sync([
            TableRow(d.id, delayed_cells(d, data.now),
                     (d.id, d.task, d.queue, d.status, d.run_at, d.priority, d.retry_count))
            for d in data.delayed])  # fmt: skip

    def _schedule(self) -> ScheduleRow | None:
        """The highlighted schedule, when the schedules table has the focus: p and n act
        on the row the operator sees highlighted, never on a cursor in another table."""
        table = self.query_one("#schedules-table", KeyedTable)
        if self.focused is not table:
            self.app.notify("p and n act on a schedule: tab to the schedules table",
                            severity="warning", markup=False)  # fmt: skip
            return None
        row = self.schedules.get(table.current_key() or "")
        if row is None:
            self.app.notify("no schedule selected", severity="warning", markup=False)
        return row

    def action_toggle_schedule(self) -> None:
        row = self._schedule()
        if row is not None:
            self.jobtui.run_operation(
                "pause", lambda ops: ops.set_schedule_enabled(row.name, not row.enabled)
            )

    def action_run_schedule_now(self) -> None:
        row = self._schedule()
        if row is not None:
            self.jobtui.run_operation("run now", lambda ops: ops.run_schedule_now(row.name))

    @on(DataTable.RowSelected)
    def on_selected(self, event: DataTable.RowSelected) -> None:
        from .detail import JobDetailScreen

        event.stop()
        key = event.row_key.value
        if event.data_table.id == "delayed-table" and key:
            self.app.push_screen(JobDetailScreen(key))
        elif event.data_table.id == "schedules-table" and key in self.schedules:
            last = self.schedules[key].last_job_id
            if last:
                self.app.push_screen(JobDetailScreen(last))
            else:
                self.app.notify("this schedule has not fired yet", markup=False)
