"""The header line (view, live/frozen, workers, database) and the error banner."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from jobtui.models.visible import folded_line, visible_line

from ..snapshot import HeaderInfo

VIEWS = (("1", "Jobs"), ("2", "Queues"), ("3", "Workers"), ("4", "Failures"), ("5", "Scheduled"),
         ("6", "Metrics"), ("7", "Audit"))  # fmt: skip


class StatusLine(Static):
    """``jobtui │ 1 Jobs › detail │ ● live │ 1 sup · 4 workers · 1 stale │ database``."""

    def __init__(self, view: str, crumb: str = "", **kwargs) -> None:
        super().__init__("", markup=False, **kwargs)
        self.view = view
        self.crumb = crumb
        self.info: HeaderInfo | None = None
        self.frozen = False
        self.read_only = False

    def on_mount(self) -> None:
        self.repaint()

    def on_resize(self) -> None:
        self.repaint()

    def set_state(self, info: HeaderInfo | None = None, *, frozen: bool | None = None,
                  read_only: bool | None = None) -> None:  # fmt: skip
        if info is not None:
            self.info = info
        if frozen is not None:
            self.frozen = frozen
        if read_only is not None:
            self.read_only = read_only
        self.repaint()

    def repaint(self) -> None:
        line = Text(no_wrap=True, overflow="ellipsis")
        line.append(" jobtui ", style="bold reverse")
        line.append(" ")
        wide = self.size.width >= 150
        for key, name in VIEWS:
            if name == self.view:
                line.append(f"{key} {name}", style="bold underline")
            else:
                line.append(f"{key} {name}" if wide else key, style="dim")
            line.append(" ")
        if self.crumb:
            line.append(f"› {visible_line(self.crumb)} ", style="bold")
        line.append("│ ", style="dim")
        if self.frozen:
            line.append("❚❚ frozen", style="bold yellow")
        else:
            line.append("● live", style="bold green")
        if self.read_only:
            line.append(" · read-only", style="yellow")
        info = self.info
        if info is not None:
            line.append(" │ ", style="dim")
            sups = info.supervisors_alive + info.supervisors_stale
            line.append(f"{sups} sup · {info.workers_alive} workers")
            if info.workers_stale or info.supervisors_stale:
                stale = info.workers_stale + info.supervisors_stale
                line.append(f" · {stale} stale", style="bold red")
            if not sups:
                line.append(" (no supervisor running)", style="yellow")
            line.append(" │ ", style="dim")
            room = self.size.width - line.cell_len - 1
            if room >= 12:
                database = info.database
                if len(database) > room:
                    database = database[: room - 1] + "…"
                line.append(database, style="dim")
        self.update(line)


class Banner(Static):
    """A red line over the view while the database cannot be read; the app keeps polling."""

    def __init__(self, **kwargs) -> None:
        super().__init__("", markup=False, **kwargs)
        self.display = False

    def show_error(self, message: str | None) -> None:
        if message is None:
            self.display = False
            return
        text = Text(no_wrap=True, overflow="ellipsis")
        text.append(" ⚠ database error: ", style="bold")
        text.append(folded_line(message))
        text.append("  — still polling; the data below may be stale", style="italic")
        self.update(text)
        self.display = True
