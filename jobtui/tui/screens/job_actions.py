"""The job actions (c R K D + - e w), shared by the jobs tables and the job detail screen.

A screen says what is selected (``selection``); this mixin picks the confirmation the
blast radius calls for (operations.confirmation_for), asks, and hands the write to the
app, which runs it in a worker thread and toasts the outcome.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from textual import work
from textual.binding import Binding

from ..operations import (
    MAX_BULK,
    VERBS,
    Confirm,
    EnqueueRequest,
    confirmation_for,
    describe_counts,
)
from ..snapshot import JobsQuery
from .modals import ConfirmScreen, EnqueueScreen, RetryScreen, TypedConfirmScreen

if TYPE_CHECKING:
    from ..app import JobtuiApp

#: Palette entries for every screen with job actions: (title, help, action).
JOB_PALETTE = (
    ("Job: cancel", "cancel the selected jobs (c)", "cancel"),
    ("Job: retry", "retry the selected failed or cancelled jobs (R)", "retry"),
    (
        "Job: edit and retry",
        "change a failed job's arguments, priority or queue and retry it (E)",
        "edit_retry",
    ),
    ("Job: kill", "kill the selected running jobs (K)", "kill"),
    ("Job: delete", "delete the selected jobs (D)", "delete"),
    ("Job: priority up", "raise the priority by one (+)", "priority_up"),
    ("Job: priority down", "lower the priority by one (-)", "priority_down"),
    ("Job: enqueue", "enqueue a new job (e)", "enqueue"),
    ("Job: go to worker", "the worker running the job (w)", "goto_worker"),
)


def job_bindings(*, show_enqueue: bool) -> list[Binding]:
    """The keys of the job actions, the same on every screen that has them."""
    return [
        Binding("c", "cancel", "Cancel"),
        Binding("R", "retry", "Retry"),
        Binding("E", "edit_retry", "Edit+retry", show=False),
        Binding("K", "kill", "Kill"),
        Binding("D", "delete", "Delete"),
        Binding("plus", "priority_up", "Pri+", show=False),
        Binding("minus", "priority_down", "Pri-", show=False),
        Binding("e", "enqueue", "Enqueue", show=show_enqueue),
        Binding("w", "goto_worker", "Worker", show=False),
    ]


@dataclass(frozen=True)
class Selection:
    ids: tuple[str, ...] = ()
    statuses: tuple[str, ...] = ()
    summary: str | None = None  # one job: its summary line
    query: JobsQuery | None = None  # "all matching": resolved when the action starts
    worker: str | None = None  # one job: its worker

    @property
    def empty(self) -> bool:
        return not self.ids and self.query is None


class JobActions:
    """Mixin for a Screen that implements ``selection()`` and ``after_action()``."""

    app: JobtuiApp

    def selection(self) -> Selection:
        raise NotImplementedError

    def after_action(self) -> None:
        """Called once an action was confirmed (a table clears its marks)."""

    def action_cancel(self) -> None:
        self.start_action("cancel")

    def action_retry(self) -> None:
        self.start_action("retry")

    def action_kill(self) -> None:
        self.start_action("kill")

    def action_delete(self) -> None:
        self.start_action("delete")

    def action_priority_up(self) -> None:
        self.start_action("priority_up")

    def action_priority_down(self) -> None:
        self.start_action("priority_down")

    def start_action(self, action: str) -> None:
        selection = self.selection()
        if selection.empty:
            self.app.notify("no job selected", severity="warning", markup=False)
            return
        if selection.query is not None:
            self._resolve_matching(action, selection.query)
            return
        if action == "kill" and "running" not in selection.statuses:
            self.app.notify("nothing to kill: no running job selected", severity="warning",
                            markup=False)  # fmt: skip
            return
        self.confirm_action(action, selection.ids, selection.statuses, selection.summary)

    @work(thread=True, exit_on_error=False, group="resolve")
    def _resolve_matching(self, action: str, query: JobsQuery) -> None:
        try:
            rows = self.app.source.matching_jobs(query, MAX_BULK)  # type: ignore[attr-defined]
        except Exception as exc:  # noqa: BLE001 - reported, never fatal
            self.app.call_from_thread(self.app.notify, f"cannot list the jobs: {exc}",
                                      severity="error", markup=False)  # fmt: skip
            return
        ids = tuple(r[0] for r in rows)
        statuses = tuple(r[1] for r in rows)
        self.app.call_from_thread(self.confirm_action, action, ids, statuses, None, True)

    def confirm_action(self, action: str, ids: tuple[str, ...], statuses: tuple[str, ...],
                       summary: str | None, all_matching: bool = False) -> None:  # fmt: skip
        if not ids:
            self.app.notify("no job matches", severity="warning", markup=False)
            return
        kind = confirmation_for(action, len(ids), all_matching=all_matching)
        verb = VERBS[action]

        def answered(ok: bool | None) -> None:
            if ok:
                self.after_action()
                self.execute_action(action, ids)

        if kind is Confirm.NONE:
            answered(True)
        elif kind is Confirm.YES_NO:
            self.app.push_screen(ConfirmScreen(f"{verb} this job?", summary or ids[0]), answered)
        elif kind is Confirm.COUNTS:
            body = describe_counts(statuses)
            self.app.push_screen(ConfirmScreen(f"{verb} {len(ids)} jobs?", body), answered)
        else:
            scope = "every job matching the filter" if all_matching else "the marked jobs"
            body = f"{describe_counts(statuses)}\n({scope})"
            if len(ids) >= MAX_BULK:
                body += f"\nOnly the newest {MAX_BULK:,} are acted on at once."
            self.app.push_screen(TypedConfirmScreen(f"{verb} {len(ids):,} jobs?", body,
                                                    str(len(ids))), answered)  # fmt: skip

    def execute_action(self, action: str, ids: tuple[str, ...]) -> None:
        app = self.app
        if action == "kill":
            source = app.source

            def kill(ops):
                return ops.kill(ids, source.statuses(ids))  # type: ignore[attr-defined]

            app.run_operation("kill", kill)
        elif action in ("priority_up", "priority_down"):
            delta = 1 if action == "priority_up" else -1
            app.run_operation(action, lambda ops: ops.change_priority(ids, delta))
        else:
            app.run_operation(action, lambda ops: getattr(ops, action)(ids))

    # ------------------------------------------------------------------ edit and retry

    def action_edit_retry(self) -> None:
        selection = self.selection()
        if len(selection.ids) != 1:
            self.app.notify("edit and retry takes one job: put the cursor on it",
                            severity="warning", markup=False)  # fmt: skip
            return
        open_retry_form(self.app, selection.ids[0])

    # ------------------------------------------------------------------ enqueue, worker

    def action_enqueue(self) -> None:
        self.app.push_screen(EnqueueScreen(), self._enqueue_answered)

    def _enqueue_answered(self, request: EnqueueRequest | None) -> None:
        if request is not None:
            self.app.run_operation("enqueue", lambda ops: ops.enqueue(request))

    def action_goto_worker(self) -> None:
        from .workers import WorkerDetailScreen

        selection = self.selection()
        if not selection.worker:
            self.app.notify("this job has no worker (it is not running)", severity="warning",
                            markup=False)  # fmt: skip
            return
        self.app.push_screen(WorkerDetailScreen(selection.worker))


def open_retry_form(app: JobtuiApp, job_id: str) -> None:
    """Read the job (a worker thread), then open the edit-and-retry form on it if it is
    failed or cancelled; the form's answer retries it through ``Operations.edit_retry``."""

    def answered(request) -> None:
        if request is not None:
            app.run_operation("edit", lambda ops: ops.edit_retry(job_id, request))

    def show(detail) -> None:
        job = detail.job
        if job is None:
            app.notify(f"job {job_id} no longer exists", severity="warning", markup=False)
        elif job.row.status not in ("failed", "cancelled"):
            app.notify(f"job is {job.row.status}: only a failed or cancelled job can be edited "
                       "and retried", severity="warning", markup=False)  # fmt: skip
        else:
            app.push_screen(RetryScreen(job_id, job.row.task, job.parameters, job.row.priority,
                                        job.row.queue), answered)  # fmt: skip

    def read() -> None:
        try:
            detail = app.source.job_detail(job_id)
        except Exception as exc:  # noqa: BLE001 - reported, never fatal
            app.call_from_thread(app.notify, f"cannot read the job: {exc}", severity="error",
                                 markup=False)  # fmt: skip
            return
        app.call_from_thread(show, detail)

    app.run_worker(read, thread=True, exit_on_error=False, group="retry-form")
