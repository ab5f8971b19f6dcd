"""The job detail screen: Overview, Parameters, Result, Traceback, Logs (tailed live),
Stack (the live stack, on ``S``) and Attempts tabs.

It polls its job like any view; when the job is deleted (or pruned) it says so and keeps
running — a screen never crashes because its row vanished.
"""

from __future__ import annotations

import json
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import DataTable, ProgressBar, Static, TabbedContent, TabPane, Tabs

from jobtui.models.aging import describe_priority
from jobtui.models.visible import json_for_terminal, visible, visible_line

from .. import formatting as fmt
from ..columns import Column
from ..snapshot import AttemptRow, DetailView, JobDetail, LogPage, Source
from ..widgets.keyed_table import KeyedTable, TableRow
from .base import ViewScreen
from .detail_logs import LogTail, stack_text
from .job_actions import JOB_PALETTE, JobActions, Selection, job_bindings

TABS = ("overview", "parameters", "result", "traceback", "logs", "stack", "attempts")
# fixed columns grow to their widest value: the error keeps the room, even at 80 columns
ATTEMPT_COLUMNS = (("#", "attempt", 1), ("started", "started", 23), ("took", "took", 4),
                   Column("worker", "worker", 16, grow=1, min_width=10), ("outcome", "outcome", 9),
                   Column("error", "error", 30, grow=4, min_width=20))  # fmt: skip
OUTCOME_STYLES = {"completed": "green", "failed": "red", "timed_out": "bold red",
                  "crashed": "bold red", "cancelled": "dim", "interrupted": "yellow"}  # fmt: skip


def as_json(value: Any) -> Text:
    if value is None:
        return Text("(none)", style="dim")
    document = json.dumps(value, indent=2, ensure_ascii=False, default=str, sort_keys=False)
    return fmt.block(json_for_terminal(document))


def progress_text(message: str | None, details: Any) -> Text:
    """The progress message, then the task's details (seed 002) as ``key value`` pairs on
    one line: a few counters an operator reads at a glance (the JSON is in ``show``)."""
    out = fmt.block(message or "", style="italic")
    if isinstance(details, dict) and details:
        if message:
            out.append("\n")
        for index, (key, value) in enumerate(details.items()):
            if isinstance(value, int) and not isinstance(value, bool):
                shown = f"{value:,}"
            else:
                shown = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
            out.append(("  " if index else "") + f"{fmt.line(key)} ", style="dim")
            out.append(fmt.line(shown))
    return out


def overview_text(job: JobDetail, now) -> Text:
    row = job.row
    out = Text()

    def line(label: str, value: object, style: str = "") -> None:
        if value in (None, "", ()):
            return
        out.append(f"{label:<11}", style="dim")
        out.append(visible_line(value), style=style)
        out.append("\n")

    def when(moment) -> str | None:
        return None if moment is None else f"{fmt.stamp(moment)}  ({fmt.age(moment, now)} ago)"

    line("id", row.id, "bold")
    line("task", row.task, "bold")
    line("title", job.title)
    line(
        "queue", f"{row.queue}    priority {describe_priority(row.priority, job.base_priority)}"
    )  # 0 (aged +3)
    line("fair key", job.fair_key)  # its tenant's line: served round-robin with the others
    state = f"{row.status}    try {row.attempt} of {row.max_retries + 1}"
    state += f", {row.retry_count} retr{'y' if row.retry_count == 1 else 'ies'} used"
    if row.cancel_requested and row.status == "running":
        asked = "kill" if job.kill_requested else "stop"
        state += f"    ({asked} requested: {job.cancel_reason})" if job.cancel_reason else (
            f"    ({asked} requested)")  # fmt: skip
    line("state", state, fmt.STATE_STYLES.get(row.status, ""))
    out.append("\n")
    line("created", when(row.created_at))
    line("due", when(row.run_at) if row.status in ("pending", "retrying", "waiting") else None)
    line("scheduled", when(job.scheduled_for))
    line("deadline", when(job.deadline) if row.status in ("pending", "waiting", "retrying")
         else None)  # fmt: skip
    line("next retry", when(job.next_retry_at))
    if row.status == "running" and row.started_at is None:
        line("started", "not yet: prefetched, waits for its worker to finish its job")
    else:
        line("started", when(row.started_at))
    line("completed", when(job.completed_at) if row.status == "completed" else None)
    line("failed", when(job.failed_at))
    line("ended", when(job.completed_at) if row.status == "cancelled" else None)
    line("updated", when(job.updated_at))
    out.append("\n")
    worker = row.worker
    if worker and job.supervisor:
        worker = f"{worker}  (supervisor {job.supervisor})"
    line("worker", worker)
    line("timeout", None if job.timeout is None else fmt.seconds(job.timeout))
    line("user", job.user_id)
    line("reference", job.reference)
    line("tags", ", ".join(job.tags))
    if job.metadata not in (None, {}, []):
        metadata = json_for_terminal(json.dumps(job.metadata, ensure_ascii=False, default=str))
        line("metadata", fmt.clip(metadata, 200))
    batch = job.batch_id
    line("batch", f"{batch}  ({job.batch_progress})" if batch and job.batch_progress else batch)
    line("schedule", job.schedule_name)
    line("unique key", job.unique_key)
    line("rate key", job.rate_key)
    line("key", job.concurrency_key)
    line("held", row.held and f"{row.held} (a due job waits for it)", "yellow")
    line("depends on", ", ".join(job.depends_on))
    line("dependants", ", ".join(job.dependants))
    line("description", job.description)
    if row.error_type or row.error:
        line("error", f"{row.error_type or 'Error'}: {row.error or ''}", "red")
    return out


def parameters_text(job: JobDetail) -> Text:
    """The job's parameters, then those its earlier attempts ran with when an operator
    edited them since (edit and retry): the history stays in view."""
    out = as_json(job.parameters)
    runs: dict[str, list[int]] = {}
    values: dict[str, Any] = {}
    for attempt in job.attempts:
        if attempt.parameters is not None:
            key = json.dumps(attempt.parameters, sort_keys=True, default=str)
            runs.setdefault(key, []).append(attempt.attempt)
            values[key] = attempt.parameters
    for key, numbers in runs.items():
        label = "attempt" if len(numbers) == 1 else "attempts"
        out.append(f"\n\nbefore an edit, {label} {', '.join(map(str, numbers))} ran with:\n",
                   style="bold yellow")  # fmt: skip
        out.append_text(as_json(values[key]))
    return out


def attempt_cells(attempt: AttemptRow) -> tuple[Text, ...]:
    return (fmt.text(attempt.attempt), fmt.text(fmt.stamp(attempt.started_at)),
            fmt.text(fmt.seconds(attempt.duration_s)), fmt.text(fmt.line(attempt.worker)),
            fmt.text(attempt.outcome, OUTCOME_STYLES.get(attempt.outcome, "")),
            fmt.error_text(attempt.error_type, attempt.error, len(attempt.error or "") + 80))  # fmt: skip


class JobDetailScreen(JobActions, ViewScreen):
    TABLE_FILTER = False
    BINDINGS = [
        Binding("left_square_bracket", "cycle_tab(-1)", "Prev tab"),
        Binding("right_square_bracket", "cycle_tab(1)", "Next tab"),
        Binding("t", "show_tab('traceback')", "Traceback", show=False),
        Binding("a", "show_tab('attempts')", "Attempts", show=False),
        Binding("l", "show_tab('logs')", "Logs", show=False),
        Binding("S", "take_stack", "Stack", show=False),
        *job_bindings(show_enqueue=False),
    ]
    PALETTE = (*JOB_PALETTE,
               ("Job: traceback", "the traceback tab (t)", "show_tab('traceback')"),
               ("Job: attempts", "the attempts tab (a)", "show_tab('attempts')"),
               ("Job: logs", "its stdout, stderr and logging, live (l)", "show_tab('logs')"),
               ("Job: live stack", "its worker's Python stack now (S)", "take_stack"))  # fmt: skip

    def __init__(self, job_id: str) -> None:
        super().__init__()
        self.job_id = job_id
        self.job: JobDetail | None = None
        self.attempts: dict[str, AttemptRow] = {}
        self.log_tail = LogTail()
        self.log_shown_running: bool | None = None  # the Logs tab drawn, for a running job?
        self.stack_answer: dict[str, Any] | None = None

    @property
    def VIEW(self) -> str:  # noqa: N802 - the header names the view this screen was opened from
        return {"jobs": "Jobs", "queues": "Queues", "workers": "Workers", "failures": "Failures",
                "scheduled": "Scheduled", "metrics": "Metrics", "audit": "Audit"}.get(
                    self.app.current_mode, "Jobs")  # fmt: skip

    def crumb(self) -> str:
        return f"job {fmt.short_id(self.job_id)}"

    def compose_body(self) -> ComposeResult:
        with TabbedContent(initial="overview", id="tabs"):
            with TabPane("Overview", id="overview"):
                with VerticalScroll():
                    yield Static("", id="overview-text")
                    yield ProgressBar(total=100, show_eta=False, id="progress")
                    yield Static("", id="progress-message")
            with TabPane("Parameters", id="parameters"):
                with VerticalScroll():
                    yield Static("", id="parameters-text")
            with TabPane("Result", id="result"):
                with VerticalScroll():
                    yield Static("", id="result-text")
            with TabPane("Traceback", id="traceback"):
                with VerticalScroll():
                    yield Static("", id="traceback-text")
            with TabPane("Logs", id="logs"):
                with VerticalScroll(id="logs-scroll"):
                    yield Static("", id="logs-text")
            with TabPane("Stack", id="stack"):
                with VerticalScroll():
                    yield Static(stack_text(None), id="stack-text")
            with TabPane("Attempts", id="attempts"):
                yield KeyedTable(ATTEMPT_COLUMNS, id="attempts-table", sortable=False)
                with VerticalScroll(id="attempt-detail"):
                    yield Static(Text("enter on an attempt shows its traceback", style="dim"),
                                 id="attempt-traceback")  # fmt: skip

    def fetch(self, source: Source) -> tuple[DetailView, LogPage | None]:
        detail = source.job_detail(self.job_id)
        page = None if detail.job is None else source.job_log(self.job_id, self.log_tail.cursor)
        return detail, page

    def show(self, data: tuple[DetailView, LogPage | None]) -> None:
        data, page = data
        self.show_log(page, data.job is not None and data.job.row.status == "running")
        job = self.job = data.job
        if job is None:
            gone = Text(f"job {self.job_id} no longer exists (deleted or pruned).\n", style="bold")
            gone.append("esc goes back.", style="dim")
            self.query_one("#overview-text", Static).update(gone)
            self.query_one("#progress", ProgressBar).display = False
            self.query_one("#progress-message", Static).update("")
            for name in ("parameters", "result", "traceback"):
                self.query_one(f"#{name}-text", Static).update(Text("(job gone)", style="dim"))
            self.query_one("#attempts-table", KeyedTable).sync([])
            return
        row = job.row
        self.query_one("#overview-text", Static).update(overview_text(job, data.now))
        bar = self.query_one("#progress", ProgressBar)
        bar.display = row.status in ("running", "completed") or row.progress > 0
        bar.update(progress=100.0 if row.status == "completed" else row.progress)
        self.query_one("#progress-message", Static).update(
            progress_text(row.progress_message, job.progress_details)
        )
        self.query_one("#parameters-text", Static).update(parameters_text(job))
        self.query_one("#result-text", Static).update(as_json(job.result))
        traceback = job.traceback or (row.error and f"{row.error_type}: {row.error}")
        self.query_one("#traceback-text", Static).update(
            fmt.block(traceback or "(no traceback)", style="" if traceback else "dim")
        )
        self.attempts = {str(a.attempt): a for a in job.attempts}
        self.query_one("#attempts-table", KeyedTable).sync(
            [TableRow(str(a.attempt), attempt_cells(a)) for a in job.attempts]
        )

    def show_log(self, page: LogPage | None, running: bool) -> None:
        """Append what the job wrote since the last poll; stay at the end if there (tail)."""
        fresh = page is not None and self.log_tail.add(page)
        if not fresh and self.log_shown_running == running:
            return  # nothing new to draw (a long log is not redrawn every poll)
        self.log_shown_running = running
        scroll = self.query_one("#logs-scroll", VerticalScroll)
        at_end = scroll.scroll_y >= scroll.max_scroll_y - 1
        self.query_one("#logs-text", Static).update(self.log_tail.text(running))
        if at_end:
            scroll.call_after_refresh(scroll.scroll_end, animate=False)

    # ------------------------------------------------------------------ live stack

    def action_take_stack(self) -> None:
        self.query_one("#tabs", TabbedContent).active = "stack"
        self.stack_answer = {"asking": True}
        self.query_one("#stack-text", Static).update(stack_text(self.stack_answer))
        self._take_stack(self.job_id)

    @work(thread=True, exclusive=True, exit_on_error=False, group="stack")
    def _take_stack(self, job_id: str) -> None:
        try:
            answer = self.jobtui.source.job_stack(job_id)
        except Exception as exc:  # noqa: BLE001 - shown in the tab, never fatal
            answer = {"error": f"{type(exc).__name__}: {exc}"}
        self.app.call_from_thread(self._show_stack, answer)

    def _show_stack(self, answer: dict[str, Any]) -> None:
        self.stack_answer = answer
        if self.is_attached:
            self.query_one("#stack-text", Static).update(stack_text(answer))

    # ------------------------------------------------------------------ tabs

    def action_cycle_tab(self, step: int) -> None:
        tabs = self.query_one("#tabs", TabbedContent)
        index = TABS.index(tabs.active) if tabs.active in TABS else 0
        self.action_show_tab(TABS[(index + step) % len(TABS)])

    def action_show_tab(self, name: str) -> None:
        tabs = self.query_one("#tabs", TabbedContent)
        if name != "attempts" and self.focused is not None and tabs in self.focused.ancestors:
            # Leave the pane before hiding it: its focused table would hand the focus to
            # the next widget of the same pane, and TabbedContent shows the pane holding
            # the focus, so [ ] t a did nothing on the Attempts tab.
            self.set_focus(tabs.query_one(Tabs))
        tabs.active = name
        if name == "attempts":
            self.query_one("#attempts-table").focus()

    @on(DataTable.RowSelected, "#attempts-table")
    def on_attempt_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        attempt = self.attempts.get(str(event.row_key.value))
        if attempt is None:
            return
        text = Text(f"attempt {attempt.attempt}: {attempt.outcome}", style="bold")
        if attempt.host or attempt.pid:
            where = visible_line(f"  on {attempt.host or '?'} pid {attempt.pid or '?'}")
            text.append(where, style="dim")
        text.append("\n")
        if attempt.parameters is not None:  # edited since: what this attempt ran with
            text.append("ran with ", style="bold yellow")
            text.append(json_for_terminal(json.dumps(attempt.parameters, ensure_ascii=False,
                                                     default=str)))  # fmt: skip
            text.append("\n")
        text.append(visible(attempt.traceback or attempt.error or "(no traceback)"))
        self.query_one("#attempt-traceback", Static).update(text)

    # ------------------------------------------------------------------ actions

    def selection(self) -> Selection:
        if self.job is None:
            return Selection()
        row = self.job.row
        return Selection(ids=(row.id,), statuses=(row.status,), summary=row.summary(),
                         worker=row.worker)  # fmt: skip
