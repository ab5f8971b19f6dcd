"""Modal screens: confirmations scaled to the blast radius, the enqueue form, the help."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.suggester import SuggestFromList
from textual.widgets import Button, Input, Label, Static

from jobtui.models.visible import json_for_terminal, visible, visible_line

from ..keymap import CONFIRMATIONS, keymap_rows
from ..operations import EnqueueRequest, RetryRequest, parse_enqueue_form, parse_retry_form

#: The help's keys column wraps past this width; "what" never gets narrower than this.
KEYS_MAX_WIDTH = 20
WHAT_MIN_WIDTH = 30


def steady_inputs(screen) -> None:
    """No blinking cursor when the app runs without timers (deterministic snapshots)."""
    if getattr(screen.app, "steady", False):
        for box in screen.query(Input):
            box.cursor_blink = False


class ConfirmScreen(ModalScreen[bool]):
    """A y/n question; focus starts on No, so a stray enter does nothing."""

    BINDINGS = [
        Binding("y", "answer(True)", "Yes"),
        Binding("n", "answer(False)", "No"),
        Binding("escape", "answer(False)", "No", show=False),
        Binding("left,right", "app.focus_next", show=False),
    ]

    def __init__(self, title: str, body: str, *, yes: str = "Yes") -> None:
        super().__init__()
        self.title_text = title
        self.body_text = body
        self.yes_label = yes

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog", classes="dialog"):
            yield Static(Text(visible_line(self.title_text), style="bold"), id="dialog-title")
            yield Static(Text(visible(self.body_text)), id="dialog-body")
            with Horizontal(classes="buttons"):
                yield Button("No", id="no", variant="primary")
                yield Button(f"{self.yes_label} (y)", id="yes", variant="error")

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(event.button.id == "yes")

    def action_answer(self, value: bool) -> None:
        self.dismiss(value)


class TypedConfirmScreen(ModalScreen[bool]):
    """For 100+ jobs or "all matching": the operator types the count to go ahead."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", show=False)]

    def __init__(self, title: str, body: str, expected: str) -> None:
        super().__init__()
        self.title_text = title
        self.body_text = body
        self.expected = expected

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog", classes="dialog"):
            yield Static(Text(visible_line(self.title_text), style="bold"), id="dialog-title")
            yield Static(Text(visible(self.body_text)), id="dialog-body")
            yield Label(Text(f"Type {self.expected} and press enter to confirm (esc cancels):"))
            yield Input(id="typed", placeholder=self.expected)

    def on_mount(self) -> None:
        steady_inputs(self)
        self.query_one("#typed", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if event.value.strip().replace(",", "") == self.expected.replace(",", ""):
            self.dismiss(True)
        else:
            self.app.notify("confirmation did not match: nothing done", severity="warning",
                            markup=False)  # fmt: skip
            self.dismiss(False)

    def action_cancel(self) -> None:
        self.dismiss(False)


class EnqueueScreen(ModalScreen[EnqueueRequest | None]):
    """Enqueue a job: task, JSON arguments, queue, priority, delay."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", show=False)]

    def __init__(self, task: str = "", queue: str = "") -> None:
        super().__init__()
        self.initial_task = task
        self.initial_queue = queue

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog", classes="dialog form"):
            yield Static(Text("Enqueue a job", style="bold"), id="dialog-title")
            yield Label(Text("task"))
            yield Input(self.initial_task, id="task", placeholder="jobtui.demo.send_email")
            yield Label(Text("arguments (JSON: [args] or {kwargs})"))
            yield Input(id="arguments", placeholder='{"to": "a@example.com"}')
            with Horizontal(classes="row"):
                with Vertical():
                    yield Label(Text("queue"))
                    yield Input(self.initial_queue, id="queue", placeholder="task's default")
                with Vertical():
                    yield Label(Text("priority"))
                    yield Input(id="priority", placeholder="0, -5 or high")
                with Vertical():
                    yield Label(Text("delay (s)"))
                    yield Input(id="delay", placeholder="0", type="number")
            yield Static("", id="form-error")
            with Horizontal(classes="buttons"):
                yield Button("Cancel", id="cancel")
                yield Button("Enqueue", id="submit", variant="success")

    def on_mount(self) -> None:
        steady_inputs(self)
        self.query_one("#task", Input).focus()
        self._load_task_names()

    @work(thread=True, exit_on_error=False, group="form")
    def _load_task_names(self) -> None:
        try:
            names = self.app.source.task_names()  # type: ignore[attr-defined]
        except Exception:  # noqa: BLE001 - suggestions are a nicety
            return
        self.app.call_from_thread(self._set_suggestions, names)

    def _set_suggestions(self, names: list[str]) -> None:
        # Names come from the job table too: one holding control characters is no task a
        # person types, and an Input shows its suggestion as it is.
        names = [name for name in names if name == visible_line(name)]
        if self.is_attached:
            self.query_one("#task", Input).suggester = SuggestFromList(names)

    def _value(self, name: str) -> str:
        return self.query_one(f"#{name}", Input).value

    def submit(self) -> None:
        try:
            request = parse_enqueue_form(self._value("task"), self._value("arguments"),
                                         self._value("queue"), self._value("priority"),
                                         self._value("delay"))  # fmt: skip
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


def _compact_json(value: object) -> str:
    import json

    return json.dumps(value, ensure_ascii=False, separators=(", ", ": "), default=str)


class RetryScreen(ModalScreen[RetryRequest | None]):
    """Edit and retry a failed or cancelled job: its arguments (JSON), priority, queue.

    It opens with the job's own values; bad JSON keeps it open with the error shown. Job
    text in the fields is shown with its control characters made visible (an Input
    would pass them to the terminal); a field left as shown keeps the job's value."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", show=False)]

    def __init__(self, job_id: str, task: str, parameters: object, priority: int,
                 queue: str) -> None:  # fmt: skip
        super().__init__()
        self.job_id = job_id
        self.task_name = task
        params = parameters if isinstance(parameters, dict) else {}
        self.initial = {
            "args": json_for_terminal(_compact_json(params.get("args", []))),
            "kwargs": json_for_terminal(_compact_json(params.get("kwargs", {}))),
            "priority": str(priority),
            "queue": visible_line(queue),
        }
        self.raw = {"args": params.get("args", []), "kwargs": params.get("kwargs", {}),
                    "queue": queue}  # fmt: skip

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog", classes="dialog form"):
            title = Text("Edit and retry ", style="bold")
            title.append(visible_line(self.task_name), style="bold")
            title.append(f"  {self.job_id}", style="dim")
            yield Static(title, id="dialog-title")
            yield Label(Text("args (JSON array)"))
            yield Input(self.initial["args"], id="retry-args", placeholder="[]")
            yield Label(Text("kwargs (JSON object)"))
            yield Input(self.initial["kwargs"], id="retry-kwargs", placeholder="{}")
            with Horizontal(classes="row"):
                with Vertical():
                    yield Label(Text("priority"))
                    yield Input(self.initial["priority"], id="retry-priority")
                with Vertical():
                    yield Label(Text("queue"))
                    yield Input(self.initial["queue"], id="retry-queue")
            yield Static("", id="form-error")
            with Horizontal(classes="buttons"):
                yield Button("Cancel", id="cancel")
                yield Button("Retry", id="submit", variant="success")

    def on_mount(self) -> None:
        steady_inputs(self)
        self.query_one("#retry-args", Input).focus()

    def _value(self, name: str) -> str:
        return self.query_one(f"#retry-{name}", Input).value

    def request(self) -> RetryRequest:
        """The form's values; a field left as shown keeps the job's exact value (what is
        shown of hostile text is its visible form, not the text itself)."""
        request = parse_retry_form(
            "" if self._value("args") == self.initial["args"] else self._value("args"),
            "" if self._value("kwargs") == self.initial["kwargs"] else self._value("kwargs"),
            self._value("priority"),
            "" if self._value("queue") == self.initial["queue"] else self._value("queue"),
        )  # fmt: skip
        keep_args = self._value("args") == self.initial["args"]
        keep_kwargs = self._value("kwargs") == self.initial["kwargs"]
        return RetryRequest(args=self.raw["args"] if keep_args else request.args,
                            kwargs=self.raw["kwargs"] if keep_kwargs else request.kwargs,
                            priority=request.priority, queue=request.queue)  # fmt: skip

    def submit(self) -> None:
        try:
            request = self.request()
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


def help_table(read_only: bool = False) -> Table:
    """The keymap as a table that stays readable in 80 columns: the keys column wraps at
    a bounded width and the "what" column takes the rest (a long key list kept on one
    line squeezed "what" to one letter)."""
    table = Table(box=None, show_header=True, header_style="bold", expand=True)
    table.add_column("scope", style="cyan", no_wrap=True)
    table.add_column("keys", style="bold", max_width=KEYS_MAX_WIDTH, overflow="fold")
    table.add_column("what", ratio=1, min_width=WHAT_MIN_WIDTH)
    for scope, keys, what in keymap_rows(read_only):
        table.add_row(Text(scope), Text(keys), Text(what))
    return table


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,question_mark", "close", "Close", show=False)]

    def __init__(self, *, read_only: bool = False) -> None:
        super().__init__()
        self.read_only = read_only

    def compose(self) -> ComposeResult:
        table = help_table(self.read_only)
        notes = Text("\nConfirmations scale with the blast radius:\n", style="bold")
        for line in CONFIRMATIONS:
            notes.append(f"  • {line}\n", style="")
        if self.read_only:
            notes.append("\nRead-only console: actions that write are hidden.\n", style="yellow")
        with Vertical(id="help", classes="dialog"):
            yield Static(Text("jobtui keys  (esc closes)", style="bold"), id="dialog-title")
            with VerticalScroll():
                yield Static(table)
                yield Static(notes)

    def action_close(self) -> None:
        self.dismiss(None)
