"""View 4, Failures: failed jobs grouped by exception type and message fingerprint.

``enter`` opens the group's jobs (a jobs table pinned to them), where ``*`` then ``R``
retries the whole group.
"""

from __future__ import annotations

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Static

from jobtui.models.outcomes import QUARANTINED

from .. import formatting as fmt
from ..columns import Column
from ..snapshot import FailureGroup, FailuresView, Source
from ..widgets.keyed_table import KeyedTable, TableRow
from .base import ViewScreen

COLUMNS = (("count", "count", 5), Column("error", "error", 18, grow=1, min_width=14),
           Column("message", "message", 44, grow=4, min_width=16),
           Column("tasks", "tasks", 22, grow=1, min_width=10), ("first seen", "first", 10),
           ("last seen", "last", 9))  # fmt: skip


#: How a group of quarantined jobs is marked (outcomes.QUARANTINED): its runs killed
#: their worker max_crashes times; retrying one by hand resets its count.
QUARANTINE_MARK = "‼ quarantined"


def is_quarantined(group: FailureGroup) -> bool:
    return group.error_type == QUARANTINED


def group_cells(group: FailureGroup, now) -> tuple[Text, ...]:
    tasks = ", ".join(t.rsplit(".", 1)[-1] for t in group.tasks)
    error = (fmt.text(QUARANTINE_MARK, "bold magenta") if is_quarantined(group)
             else fmt.text(fmt.line(group.error_type)))  # fmt: skip
    return (fmt.text(f"{group.count:,}", "bold red"), error,
            fmt.text(fmt.line(group.message)), fmt.text(fmt.line(tasks)),
            fmt.text(fmt.age(group.first_seen, now)), fmt.text(fmt.age(group.last_seen, now)))  # fmt: skip


class FailuresScreen(ViewScreen):
    VIEW = "Failures"
    BINDINGS = [Binding("E", "edit_retry", "Edit+retry newest")]
    PALETTE = (("Failures: open group", "the jobs of the group under the cursor (enter)",
                "open_group"),
               ("Failures: edit and retry", "the group's newest job, edited (E)",
                "edit_retry"))  # fmt: skip

    def __init__(self) -> None:
        super().__init__()
        self.groups: dict[str, FailureGroup] = {}

    def compose_body(self) -> ComposeResult:
        yield KeyedTable(COLUMNS, id="failures-table")
        yield Static("", id="failures-hint")

    def on_mount(self) -> None:
        self.query_one("#failures-table").focus()

    def fetch(self, source: Source) -> FailuresView:
        return source.failures_view()

    def show(self, data: FailuresView) -> None:
        self.groups = {g.key: g for g in data.groups}
        self.query_one("#failures-table", KeyedTable).sync([
            TableRow(g.key, group_cells(g, data.now),
                     (g.count, g.error_type, g.message, ",".join(g.tasks), g.first_seen,
                      g.last_seen))
            for g in data.groups])  # fmt: skip
        hint = Text(f"{data.sampled:,} failed jobs in {len(data.groups)} groups", style="dim")
        if data.capped:
            hint.append(f" (the newest {data.sampled:,} failures)", style="dim")
        hint.append(" · enter: the group's jobs (then * and R retries them all)", style="dim")
        if any(is_quarantined(g) for g in data.groups):
            hint.append(" · ‼ its runs killed their worker", style="magenta")
        self.query_one("#failures-hint", Static).update(hint)

    def action_open_group(self) -> None:
        from .jobs import JobsScreen

        key = self.query_one("#failures-table", KeyedTable).current_key()
        group = self.groups.get(key) if key else None
        if group is None:
            return
        title = f"{group.error_type}: {fmt.clip(group.message, 30)} ({group.count})"
        self.app.push_screen(JobsScreen(pinned=group.job_ids, title=title))

    def action_edit_retry(self) -> None:
        """The group's newest job in the edit-and-retry form (the others: enter, then E)."""
        from .job_actions import open_retry_form

        key = self.query_one("#failures-table", KeyedTable).current_key()
        group = self.groups.get(key) if key else None
        if group is None or not group.job_ids:
            self.app.notify("no failure group selected", severity="warning", markup=False)
            return
        open_retry_form(self.jobtui, group.job_ids[0])

    @on(DataTable.RowSelected, "#failures-table")
    def on_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_open_group()
