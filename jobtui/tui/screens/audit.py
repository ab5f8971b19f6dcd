"""View 7, Audit: the operator actions taken, newest first (models/audit.py).

Who (user@host, or an API caller's ``actor=``), where (cli, console, api), the action, its
target and arguments, and how many jobs it changed. It only reads, so a read-only
console shows it too. Targets and arguments are job text: every cell goes through
``formatting`` (control characters shown, markup never parsed).
"""

from __future__ import annotations

import json

from rich.text import Text
from textual.app import ComposeResult
from textual.widgets import Static

from .. import formatting as fmt
from ..columns import Column
from ..snapshot import AuditRow, AuditView, Source
from ..widgets.keyed_table import KeyedTable, TableRow
from .base import ViewScreen

# a job id (36) is whole at 120 columns, and 80 need no sideways scroll ("where" goes);
# the time is UTC, month-day (the log keeps 90 days by default)
COLUMNS = (("when (UTC)", "at", 14), Column("who", "actor", 12, grow=1, min_width=8),
           Column("where", "where", 7, hide_below=100), ("action", "action", 6),
           Column("target", "target", 36, grow=2, min_width=12), ("jobs", "count", 4),
           Column("arguments", "arguments", 16, grow=3, min_width=10))  # fmt: skip
ACTION_STYLES = {"kill": "bold red", "delete": "red", "purge": "red", "cancel": "yellow",
                 "edit": "cyan", "retry": "green"}  # fmt: skip


def audit_cells(row: AuditRow, now) -> tuple[Text, ...]:
    who = f"{row.actor}@{row.host}" if row.host else row.actor
    arguments = json.dumps(row.arguments, ensure_ascii=False, separators=(",", ":"),
                           default=str) if row.arguments else ""  # fmt: skip
    return (fmt.text(row.at.strftime("%m-%d %H:%M:%S")), fmt.text(fmt.line(who)), fmt.text(row.where),
            fmt.text(fmt.line(row.action), ACTION_STYLES.get(row.action, "bold")),
            fmt.text(fmt.line(row.target)), fmt.text("" if row.count is None else f"{row.count:,}"),
            fmt.text(fmt.line(arguments), "dim"))  # fmt: skip


class AuditScreen(ViewScreen):
    VIEW = "Audit"

    def compose_body(self) -> ComposeResult:
        yield KeyedTable(COLUMNS, id="audit-table", sortable=False)
        yield Static("", id="audit-hint")

    def on_mount(self) -> None:
        self.query_one("#audit-table").focus()

    def fetch(self, source: Source) -> AuditView:
        return source.audit_view()

    def show(self, data: AuditView) -> None:
        self.query_one("#audit-table", KeyedTable).sync(
            [TableRow(str(row.id), audit_cells(row, data.now)) for row in data.rows]
        )
        hint = Text(f"the newest {len(data.rows):,} operator actions · "
                    "jobtui audit --since 1h lists them in a shell", style="dim")  # fmt: skip
        self.query_one("#audit-hint", Static).update(hint)
