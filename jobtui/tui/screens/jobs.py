"""View 1, Jobs: queues pane, the 60-minute strip, the jobs table and the workers pane.

The jobs table shows one window of at most ``WINDOW`` rows read by keyset pagination:
moving past its last row slides the window down (the cursor stays on its job), ``G``
jumps to the last page, ``g`` back to following the newest jobs. The same screen, pinned
to a set of ids, lists the jobs of one failure group.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.widget import Widget
from textual.widgets import DataTable, Input, Static

from .. import formatting as fmt
from ..columns import Column
from ..filters import FilterError, parse_filter
from ..snapshot import JobRow, JobsQuery, JobsView, QueueRow, Source, Strip, WorkerRow
from ..widgets.keyed_table import KeyedTable, TableRow
from .base import FilterInput, ViewScreen
from .job_actions import JOB_PALETTE, JobActions, Selection, job_bindings
from .modals import steady_inputs
from .queues import queue_name_cell

WINDOW = 200
FULL = 10_000  # "no limit" for a cell the table cuts to its column

# the error / progress column takes most of a wide terminal; pri and worker give way first
JOB_COLUMNS = (Column("id", "id", 9),
               Column("queue", "queue", 8, grow=1, min_width=6, max_width=14),
               Column("task", "task", 16, grow=3, min_width=10, max_width=36, clip="left"),
               Column("state", "state", 9), Column("pri", "pri", 3, hide_below=108),
               Column("try", "try", 3), Column("age", "age", 5),
               Column("worker", "worker", 10, grow=1, min_width=8, max_width=16, hide_below=108),
               # 16: a progress bar and its percentage (15) stay whole before the "…"
               Column("progress / error", "info", 16, grow=5, min_width=16))  # fmt: skip
QUEUE_COLUMNS = (Column("queue", "queue", 8, grow=1, max_width=24), Column("pend", "pending", 4),
                 Column("run", "running", 3), Column("fail", "failed", 4),
                 Column("latency", "latency", 7), Column("", "paused", 1))  # fmt: skip
WORKER_COLUMNS = (Column("worker", "name", 16, grow=1, min_width=12, max_width=30),
                  Column("state", "state", 8),
                  Column("job", "job", 20, grow=2, min_width=12, max_width=60),
                  Column("progress", "progress", 15), Column("cpu", "cpu", 4),
                  Column("rss", "rss", 6), Column("beat", "beat", 5))  # fmt: skip


def info_cell(row: JobRow, now: datetime) -> Text:
    """Progress for a running job, the error for a failed one, when a delayed one is due;
    whole: the table cuts it to the column. A running job without a start time is claimed
    but waits for its worker to finish the job ahead of it (the prefetch): it says so
    rather than show an idle progress bar."""
    if row.status == "running" and row.started_at is None:
        return fmt.text("prefetched: waits for its worker", "dim")
    if row.status == "running":
        out = fmt.bar(row.progress)
        if row.progress_message:
            out.append(" " + fmt.line(row.progress_message), style="dim")
        return out
    if row.held:  # due, held back by a rate or a key limit (before an earlier error)
        return fmt.text(f"held: {fmt.line(row.held)}", "yellow")
    if row.error_type or row.error:
        return fmt.error_text(row.error_type, row.error, FULL)
    if row.status in ("pending", "retrying", "waiting") and row.run_at and row.run_at > now:
        return fmt.text(f"due {fmt.age(row.run_at, now)}", "dim")
    return Text("")


def job_cells(row: JobRow, now: datetime, marked: bool) -> tuple[Text, ...]:
    """One cell per ``JOB_COLUMNS`` entry, uncut."""
    ident = Text("●" if marked else " ", style="bold magenta")
    ident.append(fmt.short_id(row.id))
    when = row.started_at if row.status == "running" else row.created_at
    return (ident, fmt.text(fmt.line(row.queue)), fmt.text(row.task),
            fmt.state(row.status, row.cancel_requested), fmt.text(row.priority),
            fmt.text(f"{row.attempt}/{row.max_retries + 1}"), fmt.text(fmt.age(when, now)),
            fmt.text(fmt.line(row.worker)), info_cell(row, now))  # fmt: skip


def queue_cells(row: QueueRow) -> tuple[Text, ...]:
    latency = fmt.seconds(row.latency_s) if row.latency_s is not None else "—"
    style = "bold red" if (row.latency_s or 0) > 300 else ""
    return (queue_name_cell(row),
            fmt.text(fmt.count(row.count("pending")), "cyan"),
            fmt.text(fmt.count(row.count("running")), "yellow"),
            fmt.text(fmt.count(row.count("failed")), "red" if row.count("failed") else ""),
            fmt.text(latency, style), fmt.text("⏸" if row.paused else "", "bold yellow"))  # fmt: skip


def worker_cells(row: WorkerRow) -> tuple[Text, ...]:
    name = ("▸ " if row.kind == "supervisor" else "  ") + row.name
    beat = fmt.seconds(row.heartbeat_age_s)
    job = f"{fmt.short_id(row.current_job_id)} {row.current_task or ''}".strip()
    return (fmt.text(fmt.line(name), "bold red" if row.stale else ""),
            fmt.text(row.state, "bold red" if row.stale else ""), fmt.text(fmt.line(job)),
            fmt.bar(row.progress) if row.progress is not None and row.current_job_id else Text(""),
            fmt.text(f"{row.cpu_percent:.0f}%"), fmt.text(fmt.megabytes(row.rss_bytes)),
            fmt.text(beat, "bold red" if row.stale else ""))  # fmt: skip


def strip_text(strip: Strip, width: int) -> Text:
    """Done/min and failed/min over the last hour, squeezed into ``width`` cells."""
    step = -(-60 // max(10, min(60, width - 18)))

    def squeeze(values: tuple[int, ...]) -> list[int]:
        return [sum(values[i : i + step]) for i in range(0, 60, step)]

    done, failed = squeeze(strip.done_per_min), squeeze(strip.failed_per_min)
    out = Text(no_wrap=True, overflow="ellipsis")
    out.append("last 60 min\n", style="bold")
    out.append("done/min   ", style="dim")
    out.append(fmt.sparkline(done), style="green")
    out.append(f" {sum(strip.done_per_min):,}\n")
    out.append("failed/min ", style="dim")
    out.append(fmt.sparkline(failed), style="red")
    out.append(f" {sum(strip.failed_per_min):,}\n")
    out.append("wait p95 ", style="dim")
    out.append(fmt.seconds(strip.wait_p95_s))
    out.append("   oldest pending ", style="dim")
    out.append(fmt.seconds(strip.oldest_pending_s),
               style="bold red" if (strip.oldest_pending_s or 0) > 300 else "")  # fmt: skip
    return out


class StripPane(Widget):
    """The 60-minute strip; drawn at whatever width the layout gives it."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.strip: Strip | None = None

    def set_strip(self, strip: Strip) -> None:
        self.strip = strip
        self.refresh()

    def render(self) -> Text:
        if self.strip is None:
            return Text("last 60 min", style="bold")
        return strip_text(self.strip, self.content_size.width)


class JobsScreen(JobActions, ViewScreen):
    BINDINGS = [
        # priority: the app runs it before forwarding the next keys, so the characters
        # typed right after "/" (already queued) reach the filter input, not the table
        Binding("slash", "filter", "Filter", priority=True),
        Binding("space", "toggle_mark", "Mark", show=False),
        Binding("asterisk", "mark_all", "Mark all", show=False),
        *job_bindings(show_enqueue=True),
        Binding("p", "toggle_pause", "Pause queue", show=False),
    ]
    PALETTE = (
        *JOB_PALETTE,
        ("Jobs: filter", "filter the jobs table (/)", "filter"),
        ("Jobs: mark", "mark or unmark the job under the cursor (space)", "toggle_mark"),
        ("Jobs: mark all matching", "act on every job matching the filter (*)", "mark_all"),
        ("Jobs: newest / oldest first", "flip the order of the jobs table (s)", "flip_order"),
        ("Queue: pause / resume", "pause or resume the queue of the job (p)", "toggle_pause"),
    )

    def __init__(self, pinned: tuple[str, ...] | None = None, title: str | None = None,
                 base_filter: str = "") -> None:  # fmt: skip
        """``pinned``: a failure group's ids; ``base_filter``: a drill-down's own filter
        (a queue's jobs). Either makes this a drill-down: jobs only, no panes, and esc
        goes back once the operator's own filter and marks are cleared."""
        super().__init__()
        self.pinned = pinned
        self.title_text = title
        self.base_filter = base_filter
        self.panes = pinned is None and not base_filter
        self.query_state = JobsQuery(limit=WINDOW, ids=pinned, filter=parse_filter(base_filter))
        self.marked: dict[str, str] = {}
        self.all_matching = False
        self.data: JobsView | None = None
        self.rows: dict[str, JobRow] = {}
        self.queue_rows: dict[str, QueueRow] = {}
        self._cursor_to: str | None = None

    @property
    def VIEW(self) -> str:  # noqa: N802 - a drill-down names the view it was opened from
        return self.app.current_mode.capitalize()

    def crumb(self) -> str:
        return self.title_text or ""

    def compose_body(self) -> ComposeResult:
        if self.panes:
            with Horizontal(id="top-panes"):
                yield KeyedTable(QUEUE_COLUMNS, id="queue-pane", sortable=False)
                yield StripPane(id="strip")
        yield FilterInput(id="filter-input", placeholder="state:failed queue:emails task:send_* "
                          "pri:>5 age:>10m !queue:low text — enter applies, esc clears")  # fmt: skip
        yield Static("", id="filter-line")
        yield KeyedTable(JOB_COLUMNS, id="jobs-table", sortable=False)
        if self.panes:
            yield KeyedTable(WORKER_COLUMNS, id="workers-pane", sortable=False)

    def on_mount(self) -> None:
        steady_inputs(self)
        self.query_one("#filter-input").display = False
        self.query_one("#jobs-table").focus()
        self._render_filter_line()

    @property
    def table(self) -> KeyedTable:
        return self.query_one("#jobs-table", KeyedTable)

    # ------------------------------------------------------------------ data

    def fetch(self, source: Source) -> JobsView:
        return source.jobs_view(self.query_state, with_panes=self.panes)

    def show(self, data: JobsView) -> None:
        self.data = data
        self.rows = {row.id: row for row in data.page.rows}
        table = self.table
        table.sync([TableRow(row.id, job_cells(row, data.now, self.is_marked(row.id)))
                    for row in data.page.rows])  # fmt: skip
        if self._cursor_to == "first" and table.row_count:
            table.move_cursor(row=0, animate=False)
        elif self._cursor_to == "last" and table.row_count:
            table.move_cursor(row=table.row_count - 1, animate=False)
        self._cursor_to = None
        if self.panes:
            if data.queues is not None:
                self.queue_rows = {q.name: q for q in data.queues}
                self.query_one("#queue-pane", KeyedTable).sync(
                    [TableRow(q.name, queue_cells(q)) for q in data.queues]
                )
            if data.strip is not None:
                self.query_one("#strip", StripPane).set_strip(data.strip)
            self.query_one("#workers-pane", KeyedTable).sync(
                [TableRow(w.name, worker_cells(w)) for w in data.workers]
            )
        self._render_filter_line()

    def is_marked(self, job_id: str) -> bool:
        return self.all_matching or job_id in self.marked

    def _render_filter_line(self) -> None:
        line = Text(no_wrap=True, overflow="ellipsis")
        flt = self.query_state.filter
        line.append("filter ", style="dim")
        shown = fmt.clip(flt.describe(), 200) or "none (/ to filter)"
        line.append(shown, style="bold" if flt.source else "dim")
        data = self.data
        if data is not None and data.matching is not None:
            line.append(f" · {fmt.count(data.matching)} matching")
        line.append(" · oldest first" if self.query_state.oldest_first else " · newest first",
                    style="dim")  # fmt: skip
        if data is not None:
            page = data.page
            line.append(f" · {len(page.rows)} rows", style="dim")
            if page.more_above:
                line.append(" ↑more", style="dim")
            if page.more_below:
                line.append(" ↓more", style="dim")
        if self.all_matching:
            line.append(" · ALL MATCHING MARKED (* clears)", style="bold magenta")
        elif self.marked:
            line.append(f" · {len(self.marked)} marked", style="bold magenta")
        self.query_one("#filter-line", Static).update(line)

    def refresh_marks(self) -> None:
        if self.data is not None:
            self.show(self.data)

    # ------------------------------------------------------------------ paging

    @on(KeyedTable.EdgeReached, "#jobs-table")
    def on_edge(self, event: KeyedTable.EdgeReached) -> None:
        event.stop()
        page = self.data.page if self.data is not None else None
        if page is None or self.pinned is not None:
            return
        if event.direction == "up" and event.jump:
            if self.query_state.top is not None:
                self.query_state = replace(self.query_state, top=None)
                self._cursor_to = "first"
                self.jobtui.request_poll()
        elif event.direction == "down" and event.jump:
            self._cursor_to = "last"
            self._page_to_end(self.query_state)
        elif event.direction == "down" and page.more_below and page.rows:
            middle = page.rows[len(page.rows) // 2].id
            self.query_state = replace(self.query_state, top=middle)
            self.jobtui.request_poll()
        elif event.direction == "up" and page.more_above:
            self._page_up(self.query_state)

    @work(thread=True, exclusive=True, exit_on_error=False, group="paging")
    def _page_up(self, query: JobsQuery) -> None:
        ids = self.jobtui.source.rows_before(query, WINDOW // 2)
        top = ids[-1] if len(ids) >= WINDOW // 2 else None
        self.app.call_from_thread(self._set_top, top)

    @work(thread=True, exclusive=True, exit_on_error=False, group="paging")
    def _page_to_end(self, query: JobsQuery) -> None:
        self.app.call_from_thread(self._set_top, self.jobtui.source.last_page_top(query))

    def _set_top(self, top: str | None) -> None:
        self.query_state = replace(self.query_state, top=top)
        self.jobtui.request_poll()

    def action_flip_order(self) -> None:
        self.query_state = replace(self.query_state, top=None,
                                   oldest_first=not self.query_state.oldest_first)  # fmt: skip
        self._cursor_to = "first"
        self._render_filter_line()
        self.jobtui.request_poll()

    def on_key(self, event) -> None:
        if event.key == "s" and self.focused is self.table:
            event.stop()
            self.action_flip_order()

    # ------------------------------------------------------------------ filter and marks

    def action_filter(self) -> None:
        box = self.query_one("#filter-input", FilterInput)
        box.value = self.query_state.filter.source
        box.display = True
        self.set_focus(box)  # at once, not after the next message

    @on(Input.Submitted, "#filter-input")
    def on_filter_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if self.apply_filter(event.value):
            box = self.query_one("#filter-input", FilterInput)
            box.display = False
            self.set_focus(self.table)

    def apply_filter(self, text: str) -> bool:
        try:
            flt = parse_filter(text)
        except FilterError as exc:
            self.app.notify(str(exc), severity="error", markup=False)
            return False
        self.query_state = replace(self.query_state, filter=flt, top=None)
        self.marked.clear()
        self.all_matching = False
        self.data = None
        self._render_filter_line()
        self.jobtui.request_poll()
        return True

    def action_toggle_mark(self) -> None:
        key = self.table.current_key()
        if key is None or key not in self.rows:
            return
        if self.all_matching:
            self.all_matching = False
        if key in self.marked:
            del self.marked[key]
        else:
            self.marked[key] = self.rows[key].status
        self.refresh_marks()
        if self.table.cursor_row < self.table.row_count - 1:
            self.table.move_cursor(row=self.table.cursor_row + 1, animate=False)

    def action_mark_all(self) -> None:
        self.all_matching = not self.all_matching
        self.marked.clear()
        self.refresh_marks()

    def handle_back(self) -> bool:
        """Marks first, then the operator's filter (back to the drill-down's own)."""
        if self.marked or self.all_matching:
            self.marked.clear()
            self.all_matching = False
            self.refresh_marks()
            return True
        if self.query_state.filter.source.strip() != self.base_filter.strip():
            return self.apply_filter(self.base_filter)
        return False

    # ------------------------------------------------------------------ actions

    def selection(self) -> Selection:
        if self.all_matching:
            return Selection(query=replace(self.query_state, top=None))
        if self.marked:
            return Selection(ids=tuple(self.marked), statuses=tuple(self.marked.values()))
        key = self.table.current_key()
        row = self.rows.get(key) if key else None
        if row is None:
            return Selection()
        return Selection(ids=(row.id,), statuses=(row.status,), summary=row.summary(),
                         worker=row.worker)  # fmt: skip

    def after_action(self) -> None:
        self.marked.clear()
        self.all_matching = False
        self.refresh_marks()

    def action_toggle_pause(self) -> None:
        from .queues import toggle_pause

        name = None
        if self.panes and self.focused is self.query_one("#queue-pane"):
            name = self.query_one("#queue-pane", KeyedTable).current_key()
        if name is None:
            key = self.table.current_key()
            name = self.rows[key].queue if key in self.rows else None
        if name is None:
            self.app.notify("no queue selected", severity="warning", markup=False)
            return
        row = self.queue_rows.get(name)
        toggle_pause(self.jobtui, name, bool(row and row.paused))

    # ------------------------------------------------------------------ drill down

    @on(DataTable.RowSelected)
    def on_row_selected(self, event: DataTable.RowSelected) -> None:
        from .detail import JobDetailScreen
        from .workers import WorkerDetailScreen

        event.stop()
        key = event.row_key.value
        if key is None:
            return
        table_id = event.data_table.id
        if table_id == "jobs-table":
            self.app.push_screen(JobDetailScreen(key))
        elif table_id == "queue-pane":
            self.apply_filter(f'queue:"{key}"')
            self.table.focus()
        elif table_id == "workers-pane":
            self.app.push_screen(WorkerDetailScreen(key))
