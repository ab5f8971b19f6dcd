"""The jobtui console: seven views (keys 1–7, Textual MODES), polled one at a time.

Polling: the active view's ``fetch`` runs in a one-shot thread worker (exclusive, so a
refresh replaces a poll in flight; ``exit_on_error=False``, so a database error never
ends the app); when it finishes, the next poll is scheduled ``refresh_interval`` later.
Polls never pile up, and only the screen in front is read. A failed poll shows the
banner and the next one is scheduled as usual.

Tests inject the data source, the clock and ``refresh_interval=None`` (no timers: polls
happen on screen changes, after actions and on ctrl+r).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import partial
from typing import Any

from textual import work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import Screen
from textual.timer import Timer
from textual.worker import get_current_worker

from jobtui.models.visible import visible, visible_line

from .clock import Clock, SystemClock
from .keymap import MUTATING
from .operations import Operations, Outcome
from .screens.audit import AuditScreen
from .screens.base import ViewScreen
from .screens.failures import FailuresScreen
from .screens.jobs import JobsScreen
from .screens.metrics import MetricsScreen
from .screens.modals import HelpScreen
from .screens.queues import QueuesScreen
from .screens.scheduled import ScheduledScreen
from .screens.workers import WorkersScreen
from .snapshot import Source

VIEW_MODES = (("jobs", "Jobs"), ("queues", "Queues"), ("workers", "Workers"),
              ("failures", "Failures"), ("scheduled", "Scheduled"), ("metrics", "Metrics"),
              ("audit", "Audit"))  # fmt: skip


class JobtuiApp(App[int]):
    CSS_PATH = "app.tcss"
    TITLE = "jobtui"
    ENABLE_COMMAND_PALETTE = True
    MODES = {
        "jobs": JobsScreen, "queues": QueuesScreen, "workers": WorkersScreen,
        "failures": FailuresScreen, "scheduled": ScheduledScreen, "metrics": MetricsScreen,
        "audit": AuditScreen,
    }  # fmt: skip
    DEFAULT_MODE = "jobs"
    VERTICAL_BREAKPOINTS = [(0, "-short"), (32, "-tall")]
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (110, "-wide")]
    BINDINGS = [
        *(Binding(str(n), f"switch_mode('{mode}')", label, show=False)
          for n, (mode, label) in enumerate(VIEW_MODES, start=1)),
        Binding("question_mark", "help", "Help"),
        Binding("ctrl+r", "refresh", "Refresh", show=False),
        Binding("Z", "toggle_freeze", "Freeze"),
        Binding("q", "back", "Back/Quit"),
        Binding("escape", "back(False)", "Back", show=False),
    ]  # fmt: skip

    def __init__(
        self,
        source: Source,
        *,
        operations: Operations | None = None,
        clock: Clock | None = None,
        refresh_interval: float | None = 1.0,
        read_only: bool = False,
    ) -> None:
        super().__init__()
        self.source = source
        self.operations = operations
        self.clock = clock or SystemClock()
        self.refresh_interval = refresh_interval
        self.read_only = read_only or operations is None
        self.frozen = False
        self.last_error: str | None = None
        self._poll_timer: Timer | None = None
        self.polls = 0  # completed polls (tests wait on it)
        #: No timers at all (tests, snapshots): inputs do not blink either.
        self.steady = refresh_interval is None

    def on_mount(self) -> None:
        if self.steady:  # tests: deterministic, still frames
            self.animation_level = "none"

    # ------------------------------------------------------------------ polling

    def poll_target(self) -> ViewScreen | None:
        for screen in reversed(self.screen_stack):
            if isinstance(screen, ViewScreen):
                return screen
        return None

    def request_poll(self) -> None:
        """Read the active view now; the next poll is scheduled when this one is done."""
        if self._poll_timer is not None:
            self._poll_timer.stop()
            self._poll_timer = None
        target = self.poll_target()
        if target is not None:
            self._poll(target)

    @work(thread=True, exclusive=True, exit_on_error=False, group="poll")
    def _poll(self, target: ViewScreen) -> None:
        worker = get_current_worker()
        header = data = None
        error: str | None = None
        try:
            header = self.source.header()
            data = target.fetch(self.source)
        except Exception as exc:  # noqa: BLE001 - any failure is shown, and polling goes on
            error = f"{type(exc).__name__}: {exc}"
        if not worker.is_cancelled:
            self.call_from_thread(self._deliver, target, header, data, error)

    def _deliver(self, target: ViewScreen, header: Any, data: Any, error: str | None) -> None:
        self.polls += 1
        self.last_error = error
        if target.is_attached:
            target.show_status(header, error)
            if error is None:
                target.show(data)
        self._schedule_next()

    def _schedule_next(self) -> None:
        if self.refresh_interval is None or self.frozen:
            return
        if self._poll_timer is not None:
            self._poll_timer.stop()
        self._poll_timer = self.set_timer(self.refresh_interval, self.request_poll)

    # ------------------------------------------------------------------ actions

    def run_operation(self, label: str, fn: Callable[[Operations], Outcome]) -> None:
        """Run a write in a worker thread; toast its outcome and refresh the view."""
        if self.operations is None or self.read_only:
            self.notify("read-only console: no actions", severity="warning", markup=False)
            return
        self._operate(label, fn)

    @work(thread=True, exit_on_error=False, group="actions")
    def _operate(self, label: str, fn: Callable[[Operations], Outcome]) -> None:
        try:
            outcome = fn(self.operations)  # type: ignore[arg-type]
        except Exception as exc:  # noqa: BLE001 - reported, never fatal
            outcome = Outcome(f"{label} failed: {type(exc).__name__}: {exc}", "error")
        self.call_from_thread(self._after_operation, outcome)

    def notify(self, message: str, *, title: str = "", severity: Any = "information",
               timeout: float | None = None, markup: bool = False) -> None:  # fmt: skip
        """Every toast is literal text with its control characters shown: outcomes and
        errors quote job text (a summary, a failed action's exception), and Textual's
        notify would otherwise parse markup and pass escape sequences to the terminal."""
        super().notify(visible(message), title=visible_line(title), severity=severity,
                       timeout=timeout, markup=False)  # fmt: skip

    def _after_operation(self, outcome: Outcome) -> None:
        self.notify(outcome.message, severity=outcome.severity, markup=False)  # type: ignore[arg-type]
        invalidate = getattr(self.source, "invalidate", None)
        if invalidate is not None:
            invalidate()
        self.request_poll()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in MUTATING and self.read_only:
            return False
        return True

    def action_refresh(self) -> None:
        invalidate = getattr(self.source, "invalidate", None)
        if invalidate is not None:
            invalidate()
        self.request_poll()

    def action_toggle_freeze(self) -> None:
        self.frozen = not self.frozen
        target = self.poll_target()
        if target is not None:
            target.show_status(None, self.last_error)
        if self.frozen:
            if self._poll_timer is not None:
                self._poll_timer.stop()
                self._poll_timer = None
            self.notify("frozen: updates paused (Z resumes, ctrl+r refreshes once)",
                        markup=False, timeout=3)  # fmt: skip
        else:
            self.request_poll()

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(read_only=self.read_only))

    def action_back(self, quit_at_root: bool = True) -> None:
        """q leaves: back to the screen below, quit at the root. esc undoes first (clears
        the filter or the marks), then goes back, and never quits (k9s, htop: a reflex esc
        must not end the session); at the root it only says how to quit."""
        screen = self.screen
        if not quit_at_root and isinstance(screen, ViewScreen) and screen.handle_back():
            return
        if len(self.screen_stack) > 1:
            self.pop_screen()
        elif quit_at_root:
            self.exit(0)
        else:
            self.notify("nothing to go back to (q quits)", markup=False, timeout=2)

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        for n, (mode, label) in enumerate(VIEW_MODES, start=1):
            yield SystemCommand(f"View: {label}", f"switch to the {label} view ({n})",
                                partial(self.switch_mode, mode))  # fmt: skip
        yield SystemCommand("Refresh", "read the database now (ctrl+r)", self.action_refresh)
        yield SystemCommand("Freeze / unfreeze", "pause live updates (Z)",
                            self.action_toggle_freeze)  # fmt: skip
        yield SystemCommand("Help", "the keys (?)", self.action_help)
        target = screen if isinstance(screen, ViewScreen) else self.poll_target()
        if target is not None:
            for title, help_text, action in target.palette():
                yield SystemCommand(title, help_text,
                                    partial(self.run_action, action, target))  # fmt: skip
        yield SystemCommand("Quit", "quit the console", self.action_quit)
