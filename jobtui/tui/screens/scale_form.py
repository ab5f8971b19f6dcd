"""The scale form (``W`` in the Queues and Workers views): a supervisor's workers for a
queue, set without a restart (``jobtui scale``; models/scaling.py)."""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static

from jobtui.models.visible import visible_line

from .modals import steady_inputs


@dataclass(frozen=True)
class ScaleRequest:
    queue: str
    count: int
    supervisor: str | None  # None: the only live supervisor that serves the queue


def parse_scale_form(queue: str, count: str, supervisor: str = "") -> ScaleRequest:
    """Validate the form; ValueError with a message for it."""
    from jobtui.models.scaling import MAX_WORKERS_PER_QUEUE

    queue = queue.strip()
    if not queue:
        raise ValueError("queue: name the queue (* for the shared workers)")
    try:
        number = int(count.strip())
    except ValueError:
        raise ValueError(f"workers: {count.strip()!r} is not a whole number") from None
    if not 0 <= number <= MAX_WORKERS_PER_QUEUE:
        raise ValueError(f"workers: from 0 to {MAX_WORKERS_PER_QUEUE}")
    return ScaleRequest(queue=queue, count=number, supervisor=supervisor.strip() or None)


class ScaleScreen(ModalScreen[ScaleRequest | None]):
    """Queue, supervisor (blank: the one that serves it) and the number of workers; focus
    starts on the number, enter submits, esc cancels."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", show=False)]

    def __init__(self, queue: str = "", supervisor: str = "", current: int | None = None) -> None:
        super().__init__()
        self.initial = (queue, supervisor, "" if current is None else str(current))

    def compose(self) -> ComposeResult:
        queue, supervisor, current = self.initial
        with Vertical(id="dialog", classes="dialog form"):
            yield Static(Text("Scale a queue's workers", style="bold"), id="dialog-title")
            yield Static(Text("Added at once; removed after their current job.", style="dim"))
            with Horizontal(classes="row"):
                with Vertical():
                    yield Label(Text("queue"))
                    yield Input(visible_line(queue), id="scale-queue", placeholder="emails or *")
                with Vertical():
                    yield Label(Text("supervisor"))
                    yield Input(visible_line(supervisor), id="scale-supervisor",
                                placeholder="the one serving it")  # fmt: skip
                with Vertical():
                    yield Label(Text("workers"))
                    yield Input(current, id="scale-count", placeholder="N", type="integer")
            yield Static("", id="form-error")
            with Horizontal(classes="buttons"):
                yield Button("Cancel", id="cancel")
                yield Button("Scale", id="submit", variant="success")

    def on_mount(self) -> None:
        steady_inputs(self)
        self.query_one("#scale-count", Input).focus()

    def _value(self, name: str) -> str:
        return self.query_one(f"#scale-{name}", Input).value

    def submit(self) -> None:
        try:
            request = parse_scale_form(self._value("queue"), self._value("count"),
                                       self._value("supervisor"))  # fmt: skip
        except ValueError as exc:
            self.query_one("#form-error", Static).update(Text(visible_line(exc), style="bold red"))
            return
        self.dismiss(request)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.submit()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "submit":
            self.submit()
        else:
            self.dismiss(None)

    def action_cancel(self) -> None:
        self.dismiss(None)


def open_scale_form(screen, queue: str = "", supervisor: str = "",
                    current: int | None = None) -> None:  # fmt: skip
    """Push the form; a submitted request runs as an operation (a toast says the result)."""
    app = screen.app

    def done(request: ScaleRequest | None) -> None:
        if request is not None:
            app.run_operation("scale", lambda ops: ops.scale(request.queue, request.count,
                                                             request.supervisor))  # fmt: skip

    app.push_screen(ScaleScreen(queue, supervisor, current), done)
