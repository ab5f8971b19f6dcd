"""What the job detail's Logs and Stack tabs show: the job's captured output, tailed
live, and its worker's live Python stack (issue 16). Job text is data: every line goes
through ``visible_line`` before it becomes a ``Text``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from rich.text import Text

from jobtui.models.joblog import LogLine, LogPage, dropped_note
from jobtui.models.stacks import format_stack
from jobtui.models.visible import visible_line

#: The Logs tab keeps this many lines (the newest); ``jobtui logs`` prints them all.
LOG_KEEP = 2000
STREAM_STYLES = {"out": "", "err": "red", "log": "cyan"}


class LogTail:
    """The lines the Logs tab has read so far, and where to read on from."""

    def __init__(self) -> None:
        self.lines: list[LogLine] = []
        self.cursor: tuple[int, int] = (0, -1)
        self.dropped: dict[int, tuple[int, int]] = {}
        self.cut = 0  # older lines no longer kept here

    def add(self, page: LogPage) -> bool:
        """Take a page read after ``cursor``; True when something new came."""
        if page.cursor == self.cursor:
            return False
        self.cursor = page.cursor
        self.lines.extend(page.lines)
        self.dropped.update(page.dropped)
        if len(self.lines) > LOG_KEEP:
            self.cut += len(self.lines) - LOG_KEEP
            del self.lines[: len(self.lines) - LOG_KEEP]
        return True

    def text(self, job_running: bool) -> Text:
        out = Text()
        if self.cut:
            out.append(f"… {self.cut:,} older lines not shown here (jobtui logs ID prints "
                       "them all)\n", style="dim")  # fmt: skip
        attempt = 0
        for line in self.lines:
            if line.attempt != attempt:
                if attempt:
                    out.append(f"-- attempt {line.attempt} --\n", style="bold")
                attempt = line.attempt
            moment = datetime.fromtimestamp(line.at, tz=UTC)
            out.append(moment.strftime("%H:%M:%S.") + f"{moment.microsecond // 1000:03d} ",
                       style="dim")  # fmt: skip
            out.append(f"{line.stream:<4}", style=STREAM_STYLES.get(line.stream, ""))
            out.append(visible_line(line.text))
            out.append("\n")
        for number, (lost, lost_lines) in sorted(self.dropped.items()):
            out.append(f"attempt {number}: {dropped_note(lost, lost_lines)}\n", style="yellow")
        if not self.lines and not self.dropped:
            out.append("no output captured" + (" yet" if job_running else ""), style="dim")
        elif job_running:
            out.append("(running: new lines appear as the job writes them)", style="dim")
        return out


def stack_text(answer: dict[str, Any] | None) -> Text:
    """The Stack tab: how to ask, the answer, or why there is none."""
    if answer is None:
        return Text("S takes the live Python stack of a running job (every thread, innermost "
                    "frame last), without stopping it", style="dim")  # fmt: skip
    if answer.get("asking"):
        return Text("asking the job's worker for its stack…", style="dim")
    out = Text()
    style = "yellow" if answer.get("stuck") or answer.get("error") else ""
    for line in format_stack(answer):
        out.append(visible_line(line), style=style if not out else "")
        out.append("\n")
    return out
