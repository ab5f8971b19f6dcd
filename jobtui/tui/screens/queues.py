"""View 2, Queues: counts per state, latency, throughput, concurrency, its limit and rate
(across the fleet), fairness and aging, paused."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Static

from .. import formatting as fmt
from ..columns import Column
from ..snapshot import QueueRow, QueuesView, Source
from ..widgets.keyed_table import KeyedTable, TableRow
from .base import ViewScreen

if TYPE_CHECKING:
    from ..app import JobtuiApp

COLUMNS = (Column("queue", "queue", 16, grow=1, min_width=12), ("paused", "paused", 6), ("pending", "pending", 8),
           ("running", "running", 7), ("failed", "failed", 7), ("latency", "latency", 7),
           ("done/min", "throughput", 8), ("workers", "concurrency", 7), ("limit", "limit", 5),
           ("rate", "rate", 6),
           ("fair · aging", "flow", 12),
           ("retrying", "retrying", 8), ("waiting", "waiting", 7), ("done", "completed", 7),
           ("cancelled", "cancelled", 9))  # fmt: skip
STATES = ("pending", "running", "failed")
MORE_STATES = ("retrying", "waiting", "completed", "cancelled")


def toggle_pause(app: JobtuiApp, queue: str, paused: bool) -> None:
    """Pause a running queue or resume a paused one (reversible: no confirmation)."""
    app.run_operation("pause", lambda ops: ops.set_paused(queue, not paused))


def _count(row: QueueRow, status: str) -> Text:
    value = row.count(status)
    return fmt.text(fmt.count(value), fmt.STATE_STYLES.get(status, "") if value else "dim")


ALERT_MARK = "⚠ "
HINT = ("enter: the queue's jobs · p: pause/resume · W: its workers · latency is the age "
        "of the oldest due pending job · counts stop at 10k")  # fmt: skip


def queue_name_cell(row: QueueRow, style: str = "") -> Text:
    """The queue's name, marked ⚠ in bold red while it is in alert (models/alert.py)."""
    if row.alerts:
        return fmt.text(ALERT_MARK + fmt.line(row.name), "bold red")
    return fmt.text(fmt.line(row.name), style)


def _wait(seconds: float) -> str:
    """A wait against its threshold, exact to the second below ten minutes ("74s > 60s",
    where "1m > 1m" would say nothing)."""
    return f"{seconds:.0f}s" if seconds < 600 else fmt.seconds(seconds)


def alert_summary(rows: list[QueueRow]) -> str | None:
    """One line naming the queues in alert and why ("emails: waited 6m > 5m, 12% failed >
    10%"), or None when none is."""
    parts = []
    for row in rows:
        why = []
        for kind, value, threshold in row.alerts:
            if kind == "wait":
                why.append(f"waited {_wait(value)} > {_wait(threshold)}")
            else:
                why.append(f"{value:.3g}% failed > {threshold:g}%")
        if why:
            parts.append(f"{row.name}: {', '.join(why)}")
    return f"{ALERT_MARK}in alert: " + "; ".join(parts) if parts else None


def queue_row_cells(row: QueueRow) -> tuple[Text, ...]:
    latency = fmt.seconds(row.latency_s) if row.latency_s is not None else "—"
    waits = any(kind == "wait" for kind, _, _ in row.alerts)
    failing = any(kind != "wait" for kind, _, _ in row.alerts)
    failed = _count(row, "failed")
    if failing:
        failed.stylize("bold red")
    return (queue_name_cell(row, "bold"),
            fmt.text("⏸ yes" if row.paused else "", "bold yellow"),
            _count(row, "pending"), _count(row, "running"), failed,
            fmt.text(latency, "bold red" if waits or (row.latency_s or 0) > 300 else ""),
            fmt.text(f"{row.done_last_hour / 60:.1f}"),
            fmt.text("—" if row.concurrency is None else row.concurrency),
            fmt.text("—" if row.limit is None else row.limit, "" if row.limit is None else "bold"),
            fmt.text(row.rate or "—", "" if row.rate is None else "bold"),
            fmt.text(flow_text(row), "" if row.fair_keys or row.priority_aging_s else "dim"),
            *(_count(row, s) for s in MORE_STATES))  # fmt: skip


def flow_text(row: QueueRow) -> str:
    """Fairness and aging of a queue: ``3 keys · 10m`` (fair keys with claimable jobs,
    served round-robin; its own aging period), ``—`` when neither applies."""
    from jobtui.models.aging import describe_period

    parts = []
    if row.fair_keys:
        parts.append(f"{row.fair_keys:,} key{'s' if row.fair_keys != 1 else ''}")
    if row.priority_aging_s is not None:
        parts.append(describe_period(row.priority_aging_s))
    return " · ".join(parts) or "—"


class QueuesScreen(ViewScreen):
    VIEW = "Queues"
    BINDINGS = [Binding("p", "toggle_pause", "Pause/resume"), Binding("W", "scale", "Scale")]
    PALETTE = (("Queue: pause / resume", "pause or resume the queue under the cursor (p)",
                "toggle_pause"),
               ("Queue: scale its workers", "set its supervisor's workers for the queue (W)",
                "scale"),
               ("Queue: its jobs", "the jobs of the queue under the cursor (enter)",
                "open_queue"))  # fmt: skip

    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[str, QueueRow] = {}

    def compose_body(self) -> ComposeResult:
        yield KeyedTable(COLUMNS, id="queues-table")
        yield Static(Text(HINT, style="dim"), id="queues-hint")

    def on_mount(self) -> None:
        self.query_one("#queues-table").focus()

    def fetch(self, source: Source) -> QueuesView:
        return source.queues_view()

    def show(self, data: QueuesView) -> None:
        self.rows = {q.name: q for q in data.queues}
        self.query_one("#queues-table", KeyedTable).sync([
            TableRow(q.name, queue_row_cells(q),
                     (q.name, q.paused, *(q.count(s) for s in STATES), q.latency_s,
                      q.done_last_hour, q.concurrency, q.limit, q.rate,
                      (q.fair_keys, q.priority_aging_s or 0),
                      *(q.count(s) for s in MORE_STATES), q.alerts))
            for q in data.queues])  # fmt: skip
        alerts = alert_summary(list(data.queues))
        self.query_one("#queues-hint", Static).update(
            fmt.text(alerts, "bold red") if alerts else Text(HINT, style="dim")
        )

    def current(self) -> str | None:
        return self.query_one("#queues-table", KeyedTable).current_key()

    def action_toggle_pause(self) -> None:
        name = self.current()
        if name is None:
            self.app.notify("no queue selected", severity="warning", markup=False)
            return
        row = self.rows.get(name)
        toggle_pause(self.jobtui, name, bool(row and row.paused))

    def action_scale(self) -> None:
        from .scale_form import open_scale_form

        name = self.current()
        if name is None:
            self.app.notify("no queue selected", severity="warning", markup=False)
            return
        open_scale_form(self, name)

    def action_open_queue(self) -> None:
        """A drill-down inside this view (esc comes back here), not a jump to view 1."""
        from .jobs import JobsScreen

        name = self.current()
        if name is not None:
            self.app.push_screen(JobsScreen(title=f"queue {name}", base_filter=f'queue:"{name}"'))

    @on(DataTable.RowSelected, "#queues-table")
    def on_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_open_queue()
