"""View 3, Workers: supervisors and their workers (stale ones red and first), and the
worker detail screen (``w`` from a job, ``enter`` here; ``o`` opens its current job)."""

from __future__ import annotations

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import DataTable, Static

from jobtui.models.visible import visible_line

from .. import formatting as fmt
from ..columns import Column
from ..snapshot import WorkerDetailView, WorkerRow, WorkersView
from ..widgets.keyed_table import KeyedTable, TableRow
from .base import ViewScreen

# counts and figures are as wide as their widest value; names, job, host and queues grow;
# on a narrow terminal the least needed columns give way so that the counts stay in view
COLUMNS = (Column("name", "name", 14, grow=1, min_width=14, max_width=30),
           Column("state", "state", 5), Column("heartbeat", "beat", 9),
           Column("current job", "job", 22, grow=3, min_width=10, max_width=60),
           Column("progress", "progress", 15, hide_below=100), Column("cpu", "cpu", 3),
           Column("rss", "rss", 5), Column("uptime", "uptime", 6, hide_below=100),
           Column("done", "done", 4), Column("failed", "failed", 6),
           Column("host", "host", 10, grow=1, min_width=6, max_width=24, hide_below=140),
           Column("pid", "pid", 3, hide_below=140),
           Column("queues", "queue", 8, grow=1, min_width=6, max_width=30, hide_below=140))  # fmt: skip


def worker_row_cells(row: WorkerRow) -> tuple[Text, ...]:
    alarm = "bold red" if row.stale else ""
    name = ("▸ " if row.kind == "supervisor" else "  ") + row.name
    job = f"{fmt.short_id(row.current_job_id)} {row.current_task or ''}".strip()
    if row.kind == "supervisor" and row.queue:  # its workers per queue, autoscale bounds
        job = f"workers {row.queue}"
    progress = (
        fmt.bar(row.progress) if row.current_job_id and row.progress is not None else Text("")
    )
    beat = fmt.seconds(row.heartbeat_age_s) + (" STALE" if row.stale else "")
    return (fmt.text(fmt.line(name), alarm or ("bold" if row.kind == "supervisor" else "")),
            fmt.text(row.state, alarm), fmt.text(beat, alarm), fmt.text(fmt.line(job)),
            progress, fmt.text(f"{row.cpu_percent:.0f}%"), fmt.text(fmt.megabytes(row.rss_bytes)),
            fmt.text(fmt.seconds(row.uptime_s)), fmt.text(f"{row.jobs_done:,}"),
            fmt.text(f"{row.jobs_failed:,}", "red" if row.jobs_failed else ""),
            fmt.text(fmt.line(row.host)), fmt.text(row.pid), fmt.text(fmt.line(row.queue)))  # fmt: skip


def open_job(screen: ViewScreen, job_id: str | None) -> None:
    from .detail import JobDetailScreen

    if not job_id:
        screen.app.notify("no current job: the worker is idle", severity="warning", markup=False)
        return
    screen.app.push_screen(JobDetailScreen(job_id))


def group_counts(text: str | None) -> dict[str, int]:
    """A supervisor row's queue text, ``emails=4 (auto 1-8), *=2``, as {group: workers}."""
    out = {}
    for part in (text or "").split(", "):
        label, sep, rest = part.partition("=")
        count = rest.split(" ")[0]
        if sep and count.isdigit():
            out[label] = int(count)
    return out


def scale_target(row: WorkerRow, rows: dict[str, WorkerRow]) -> tuple[str, str, int | None]:
    """What the scale form starts with for a row: (queue, supervisor, its workers now) —
    a worker's own group, or a supervisor's first group."""
    if row.kind == "worker":
        sup = rows.get(row.supervisor or "")
        counts = group_counts(sup.queue) if sup is not None else {}
        return row.queue or "", row.supervisor or "", counts.get(row.queue or "")
    counts = group_counts(row.queue)
    first = next(iter(counts), "")
    return first, row.name, counts.get(first)


class WorkersScreen(ViewScreen):
    VIEW = "Workers"
    BINDINGS = [Binding("o", "open_job", "Its job"), Binding("W", "scale", "Scale")]
    PALETTE = (("Worker: current job", "the job the worker runs (o)", "open_job"),
               ("Workers: scale a queue", "set the supervisor's workers for a queue (W)",
                "scale"),
               ("Worker: detail", "the worker under the cursor (enter)", "open_worker"))  # fmt: skip

    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[str, WorkerRow] = {}

    def compose_body(self) -> ComposeResult:
        yield KeyedTable(COLUMNS, id="workers-table")
        yield Static(Text("stale: no heartbeat for 3 intervals (15 s by default) · enter: "
                          "detail · o: its current job · W: scale its queue", style="dim"),
                     id="workers-hint")  # fmt: skip

    def on_mount(self) -> None:
        self.query_one("#workers-table").focus()

    def fetch(self, source) -> WorkersView:
        return source.workers_view()

    def show(self, data: WorkersView) -> None:
        self.rows = {r.name: r for r in data.rows}
        self.query_one("#workers-table", KeyedTable).sync([
            TableRow(r.name, worker_row_cells(r),
                     (r.name, r.state, r.heartbeat_age_s, r.current_job_id, r.progress,
                      r.cpu_percent, r.rss_bytes, r.uptime_s, r.jobs_done, r.jobs_failed, r.host,
                      r.pid, r.queue))
            for r in data.rows])  # fmt: skip

    def current(self) -> WorkerRow | None:
        key = self.query_one("#workers-table", KeyedTable).current_key()
        return self.rows.get(key) if key else None

    def action_open_job(self) -> None:
        row = self.current()
        open_job(self, row.current_job_id if row else None)

    def action_open_worker(self) -> None:
        row = self.current()
        if row is not None:
            self.app.push_screen(WorkerDetailScreen(row.name))

    def action_scale(self) -> None:
        from .scale_form import open_scale_form

        row = self.current()
        if row is None:
            self.app.notify("no supervisor or worker selected", severity="warning", markup=False)
            return
        queue, supervisor, current = scale_target(row, self.rows)
        open_scale_form(self, queue, supervisor, current)

    @on(DataTable.RowSelected, "#workers-table")
    def on_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_open_worker()


class WorkerDetailScreen(ViewScreen):
    """One worker or supervisor; it may vanish at any moment (replaced, stopped)."""

    TABLE_FILTER = False
    BINDINGS = [Binding("o", "open_job", "Its job")]
    PALETTE = (("Worker: current job", "the job the worker runs (o)", "open_job"),)

    def __init__(self, name: str) -> None:
        super().__init__()
        self.worker_name = name
        self.data: WorkerDetailView | None = None

    @property
    def VIEW(self) -> str:  # noqa: N802 - the header names the view this screen was opened from
        return self.app.current_mode.capitalize()

    def crumb(self) -> str:
        return f"worker {self.worker_name}"

    def compose_body(self) -> ComposeResult:
        with VerticalScroll():
            yield Static("", id="worker-text")

    def fetch(self, source) -> WorkerDetailView:
        return source.worker_detail(self.worker_name)

    def show(self, data: WorkerDetailView) -> None:
        self.data = data
        row = data.worker
        if row is None:
            text = Text(f"worker {self.worker_name} is gone: its supervisor replaced or stopped "
                        "it.\n", style="bold")  # fmt: skip
            text.append("esc goes back.", style="dim")
            self.query_one("#worker-text", Static).update(text)
            return
        out = Text()

        def line(label: str, value: object, style: str = "") -> None:
            out.append(f"{label:<14}", style="dim")
            out.append("—" if value in (None, "") else visible_line(value), style=style)
            out.append("\n")

        line("name", row.name, "bold")
        line("kind", row.kind)
        line("supervisor", row.supervisor)
        line("host / pid", f"{row.host} / {row.pid}")
        line("state", row.state, "bold red" if row.stale else "")
        line("queues", row.queue)
        line("heartbeat", fmt.seconds(row.heartbeat_age_s) + " ago" + ("  STALE" if row.stale
                                                                       else ""),
             "bold red" if row.stale else "")  # fmt: skip
        line("uptime", fmt.seconds(row.uptime_s))
        line("cpu / rss", f"{row.cpu_percent:.0f}% / {fmt.megabytes(row.rss_bytes)}")
        line("jobs", f"{row.jobs_done:,} done, {row.jobs_failed:,} failed")
        if data.job is not None:
            job = data.job
            out.append("\ncurrent job (o opens it)\n", style="bold")
            line("id", job.id)
            line("task", job.task)
            line("state", job.status, fmt.STATE_STYLES.get(job.status, ""))
            out.append(f"{'progress':<14}", style="dim")
            out.append_text(fmt.bar(job.progress, 20))
            out.append(f"  {visible_line(job.progress_message or '')}\n")
        elif row.kind == "worker":
            out.append("\nidle: no current job\n", style="dim")
        for child in data.workers:
            out.append("\n" + visible_line(f"  {child.name:<20} {child.state:<8} "), style="")
            out.append(
                visible_line(f"{fmt.short_id(child.current_job_id)} {child.current_task or ''}")
            )
        self.query_one("#worker-text", Static).update(out)

    def action_open_job(self) -> None:
        job = self.data.job if self.data is not None else None
        open_job(self, job.id if job else None)
