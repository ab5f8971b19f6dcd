"""The base of every polled screen: header line, error banner, body, footer.

The app polls the active screen only: ``fetch`` runs in a worker thread and returns an
immutable snapshot (it must not touch widgets), ``show`` renders it on the main thread.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from textual.app import ComposeResult
from textual.screen import Screen
from textual.widgets import Footer

from ..keymap import MUTATING
from ..snapshot import HeaderInfo, Source
from ..widgets.status import Banner, StatusLine

if TYPE_CHECKING:
    from ..app import JobtuiApp


class ViewScreen(Screen):
    VIEW: ClassVar[str] = "Jobs"
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
        return True

    def palette(self) -> list[tuple[str, str, str]]:
        return [entry for entry in self.PALETTE
                if not (self.jobtui.read_only and entry[2].split("(")[0] in MUTATING)]  # fmt: skip

    def handle_back(self) -> bool:
        """Handle q / esc here (True) instead of going back; e.g. clear the marks."""
        return False
