"""View 6, Metrics: the last hour, 24 hours and 7 days — done, failed, rate, wait and run
time percentiles, in all (a KPI strip with sparklines) and per queue and task (the table,
for the window ``w`` selects).

Every figure is exact: it is summed from the rollup table the supervisor writes with the
outcomes (models/rollup.py), never sampled, so counts show in full with thousands
separators. Percentiles come from log-scale histograms (within a factor of two by
construction, interpolated inside a bucket).
"""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Static

from .. import formatting as fmt
from ..columns import Column
from ..snapshot import MetricRow, MetricsView, MetricsWindow, Source
from ..widgets.keyed_table import KeyedTable, TableRow
from .base import ViewScreen

TREND_CELLS = 9
COLUMNS = (Column("queue", "queue", 10, grow=1, min_width=8),
           Column("task", "task", 18, grow=2, min_width=12, clip="left"), ("done", "done", 9),
           ("failed", "failed", 8), ("fail %", "rate", 6), ("/min", "throughput", 7),
           ("wait p50", "wait50", 8), ("wait p95", "wait95", 8), ("run p50", "run50", 7),
           ("run p95", "run95", 7), ("trend", "trend", TREND_CELLS))  # fmt: skip


def squeeze(values: tuple[int, ...], cells: int) -> list[int]:
    """Sum consecutive slots so the series fits ``cells`` characters."""
    if not values:
        return [0] * cells
    step = -(-len(values) // cells)
    return [sum(values[i : i + step]) for i in range(0, len(values), step)]


def ended(row: MetricRow) -> tuple[int, ...]:
    """Done plus failed per slot (either series may be empty: nothing of that kind)."""
    done, failed = row.done_series, row.failed_series
    if not done or not failed:
        return done or failed
    return tuple(d + f for d, f in zip(done, failed, strict=True))


def trend(row: MetricRow, cells: int = TREND_CELLS) -> Text:
    """Ends per slot as a sparkline: red where the row failed more than it completed."""
    style = "red" if row.failed > row.done else "green"
    return Text(fmt.sparkline(squeeze(ended(row), cells)), style=style)


def metric_cells(row: MetricRow) -> tuple[Text, ...]:
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
            fmt.text(f"{row.per_min:,.1f}", style),
            fmt.text(fmt.seconds(row.wait_p50_s)), fmt.text(fmt.seconds(row.wait_p95_s)),
            fmt.text(fmt.seconds(row.run_p50_s)), fmt.text(fmt.seconds(row.run_p95_s)),
            trend(row))  # fmt: skip


def kpi_text(windows: tuple[MetricsWindow, ...], selected: int, width: int = 120) -> Text:
    """One line per window: a sparkline of ends per slot, then its exact totals."""
    wide = width >= 110
    spark = 16 if wide else 8
    out = Text(no_wrap=True, overflow="ellipsis")
    for index, window in enumerate(windows):
        t = window.total
        rate = t.failure_rate
        chosen = index == selected
        out.append(f"{'▶' if chosen else ' '} {window.label:>3} ", style="bold" if chosen else "")
        out.append(fmt.sparkline(squeeze(ended(t), spark)).ljust(spark), style="green")
        out.append(f"  done {t.done:>{11 if wide else 9},}", style="green" if t.done else "")
        out.append(f"  failed {t.failed:>{9 if wide else 7},}", style="red" if t.failed else "")
        out.append("      —" if rate is None else f"  {rate * 100:4.1f} %",
                   style="bold red" if rate and rate > 0.1 else "")  # fmt: skip
        out.append(f"  {t.per_min:>{9 if wide else 7},.1f}/min", style="dim")
        out.append(f"  wait {fmt.seconds(t.wait_p50_s)}/{fmt.seconds(t.wait_p95_s)}")
        out.append(f"  run {fmt.seconds(t.run_p50_s)}/{fmt.seconds(t.run_p95_s)}")
        if index < len(windows) - 1:
            out.append("\n")
    return out


class MetricsScreen(ViewScreen):
    VIEW = "Metrics"
    DEFAULT_CSS = "#metrics-kpi { text-wrap: nowrap; text-overflow: ellipsis; }"
    BINDINGS = [Binding("w", "next_window", "Window 1h/24h/7d")]
    PALETTE = (("Metrics: next window", "the table shows 1h, 24h or 7d (w)", "next_window"),)

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.selected = 0
        self.data: MetricsView | None = None

    def compose_body(self) -> ComposeResult:
        yield Static("", id="metrics-kpi")
        yield KeyedTable(COLUMNS, id="metrics-table", sortable=True)
        yield Static("", id="metrics-hint")

    def on_mount(self) -> None:
        self.query_one("#metrics-table").focus()

    def fetch(self, source: Source) -> MetricsView:
        return source.metrics_view()

    def action_next_window(self) -> None:
        self.selected += 1
        if self.data is not None:
            self.show(self.data)

    def show(self, data: MetricsView) -> None:
        self.data = data
        if not data.windows:
            return
        self.selected %= len(data.windows)
        window = data.windows[self.selected]
        kpi = kpi_text(data.windows, self.selected, self.size.width)
        self.query_one("#metrics-kpi", Static).update(kpi)
        self.query_one("#metrics-table", KeyedTable).sync([
            TableRow(f"{r.queue}\x00{r.task}", metric_cells(r),
                     (r.queue, r.task, r.done, r.failed, r.failure_rate, r.per_min,
                      r.wait_p50_s, r.wait_p95_s, r.run_p50_s, r.run_p95_s, r.done + r.failed))
            for r in window.rows])  # fmt: skip
        others = ", ".join(w.label for w in data.windows if w is not window)
        hint = Text(f"jobs that ended in the last {window.label} (w: {others}) · exact",
                    style="dim")  # fmt: skip
        hint.append(" · wait = start − due · run = end − start · p50/p95 · s sorts", style="dim")
        self.query_one("#metrics-hint", Static).update(hint)
