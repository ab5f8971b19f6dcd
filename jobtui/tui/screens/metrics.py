"""View 6, Metrics: the last hour per queue and per task — throughput, failure rate, wait
and run time percentiles."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.widgets import Static

from .. import formatting as fmt
from ..columns import Column
from ..snapshot import MetricRow, MetricsView, Source
from ..widgets.keyed_table import KeyedTable, TableRow
from .base import ViewScreen

COLUMNS = (Column("queue", "queue", 12, grow=1, min_width=8),
           Column("task", "task", 24, grow=2, min_width=12), ("done", "done", 7),
           ("failed", "failed", 7), ("fail %", "rate", 6), ("/min", "throughput", 6),
           ("wait p50", "wait50", 8), ("wait p95", "wait95", 8), ("run p50", "run50", 8),
           ("run p95", "run95", 8))  # fmt: skip


def metric_cells(row: MetricRow, window_s: float) -> tuple[Text, ...]:
    rate = row.failure_rate
    total = not row.task
    style = "bold" if total else ""
    return (fmt.text(fmt.line(row.queue) if total else "", style),
            fmt.text("all tasks" if total else "  " + fmt.line(row.task),
                     "bold" if total else ""),
            fmt.text(f"{row.done:,}", style), fmt.text(f"{row.failed:,}",
                                                       "red" if row.failed else style),
            fmt.text("—" if rate is None else f"{rate * 100:.1f}",
                     "bold red" if rate and rate > 0.1 else style),
            fmt.text(f"{(row.done + row.failed) / (window_s / 60):.1f}", style),
            fmt.text(fmt.seconds(row.wait_p50_s)), fmt.text(fmt.seconds(row.wait_p95_s)),
            fmt.text(fmt.seconds(row.run_p50_s)), fmt.text(fmt.seconds(row.run_p95_s)))  # fmt: skip


class MetricsScreen(ViewScreen):
    VIEW = "Metrics"

    def compose_body(self) -> ComposeResult:
        yield KeyedTable(COLUMNS, id="metrics-table", sortable=True)
        yield Static("", id="metrics-hint")

    def on_mount(self) -> None:
        self.query_one("#metrics-table").focus()

    def fetch(self, source: Source) -> MetricsView:
        return source.metrics_view()

    def show(self, data: MetricsView) -> None:
        self.query_one("#metrics-table", KeyedTable).sync([
            TableRow(f"{r.queue}\x00{r.task}", metric_cells(r, data.window_s),
                     (r.queue, r.task, r.done, r.failed, r.failure_rate,
                      r.done + r.failed, r.wait_p50_s, r.wait_p95_s, r.run_p50_s, r.run_p95_s))
            for r in data.rows])  # fmt: skip
        hint = Text(f"jobs that ended in the last {fmt.seconds(data.window_s)}", style="dim")
        if data.sampled:
            hint.append(" (sampled: the newest 20,000)", style="dim")
        hint.append(" · wait = start − due · run = end − start · s sorts", style="dim")
        self.query_one("#metrics-hint", Static).update(hint)
