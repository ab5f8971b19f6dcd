"""The base of every polled screen: header line, error banner, body, footer.

The app polls the active screen only: ``fetch`` runs in a worker thread and returns an
immutable snapshot (it must not touch widgets), ``show`` renders it on the main thread.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer, Input

from ..keymap import MUTATING
from ..snapshot import HeaderInfo, Source
from ..widgets.keyed_table import KeyedTable
from ..widgets.status import Banner, StatusLine

if TYPE_CHECKING:
    from ..app import JobtuiApp


class FilterInput(Input):
    """A filter box: enter applies it, esc clears it."""

    BINDINGS = [Binding("escape", "clear_filter", "Clear filter", show=False)]

    def action_clear_filter(self) -> None:
        self.value = ""
        self.post_message(self.Submitted(self, ""))

    def show(self, shown: bool) -> None:
        """Show or hide it; hidden, it takes no focus (a screen's first focus included)."""
        self.display = shown
        self.can_focus = shown


class ViewScreen(Screen):
    """``/`` filters the screen's tables by text (the Jobs view has its own grammar)."""

    BINDINGS = [
        # priority: the app runs it before forwarding the next keys, so the characters
        # typed right after "/" (already queued) reach the filter input, not the table
        Binding("slash", "filter_tables", "Filter", priority=True),
    ]
    #: The actions of "/": off while an input has the focus (see check_action).
    FILTER_ACTIONS: ClassVar[frozenset[str]] = frozenset({"filter", "filter_tables"})
    VIEW: ClassVar[str] = "Jobs"
    #: Whether ``/`` filters this screen's tables by text (not on a job's detail).
    TABLE_FILTER: ClassVar[bool] = True
    #: Palette entries of this screen: (title, help, action). Mutating ones are hidden
    #: in read-only mode.
    PALETTE: ClassVar[tuple[tuple[str, str, str], ...]] = ()

    @property
    def jobtui(self) -> JobtuiApp:
        return self.app  # type: ignore[return-value]

    def crumb(self) -> str:
        return ""

    def compose(self) -> ComposeResult:
        yield StatusLine(self.VIEW, self.crumb(), id="status")
        yield Banner(id="banner")
        box = FilterInput(id="table-filter", placeholder="words every row shown must hold "
                          "(enter: apply · esc: clear)")  # fmt: skip
        box.show(False)
        yield box
        yield from self.compose_body()
        yield Footer(compact=True)

    def compose_body(self) -> ComposeResult:
        return iter(())

    # ------------------------------------------------------------------ polling

    def fetch(self, source: Source) -> Any:
        """Read this screen's snapshot (worker thread: no widgets here)."""
        raise NotImplementedError

    def show(self, data: Any) -> None:
        """Render a snapshot (main thread)."""

    def show_status(self, info: HeaderInfo | None, error: str | None) -> None:
        self.query_one(StatusLine).set_state(info, frozen=self.jobtui.frozen,
                                             read_only=self.jobtui.read_only)  # fmt: skip
        self.query_one(Banner).show_error(error)

    def on_screen_resume(self) -> None:
        self.query_one(StatusLine).set_state(frozen=self.jobtui.frozen,
                                             read_only=self.jobtui.read_only)  # fmt: skip
        self.jobtui.request_poll()

    # ------------------------------------------------------------------ actions

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in MUTATING and self.jobtui.read_only:
            return False
        if action == "filter_tables" and not self.TABLE_FILTER:
            return False
        if action in self.FILTER_ACTIONS and isinstance(self.focused, Input):
            # a "/" typed into the filter is text: the key goes to the input's own queue,
            # behind the keys typed before it. Inserting it here, at once, put it ahead of
            # them when typed fast ("a/b/c" became "//abc")
            return False
        return True

    def palette(self) -> list[tuple[str, str, str]]:
        return [entry for entry in self.PALETTE
                if not (self.jobtui.read_only and entry[2].split("(")[0] in MUTATING)]  # fmt: skip

    def handle_back(self) -> bool:
        """Handle esc here (True) instead of going back; e.g. clear a filter."""
        if any(table.text_filter for table in self.query(KeyedTable)):
            self._filter_tables("")
            return True
        return False

    # ------------------------------------------------------------------ the text filter

    def action_filter_tables(self) -> None:
        box = self.query_one("#table-filter", FilterInput)
        box.show(True)
        self.set_focus(box)  # at once, not after the next message

    @on(Input.Submitted, "#table-filter")
    def on_table_filter_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self._filter_tables(event.value)

    def _filter_tables(self, text: str) -> None:
        box = self.query_one("#table-filter", FilterInput)
        box.value = text
        box.show(bool(text.strip()))  # shown while it filters, so it is never forgotten
        tables = list(self.query(KeyedTable))
        for table in tables:
            table.set_text_filter(text)
        if tables:
            self.set_focus(tables[0])
        hidden = sum(table.hidden_count for table in tables)
        if text.strip():
            self.notify(f"{hidden} row{'' if hidden == 1 else 's'} hidden by the filter",
                        markup=False, timeout=2)  # fmt: skip
