"""Plain-text output for the CLI: aligned tables, relative ages, sizes. No Rich, no Textual:
the CLI must start fast and print the same in a pipe as in a terminal.

Job text is data from outside: every cell, ``show`` field and JSON document passes through
``jobtui.models.visible`` so its control characters show instead of acting on the
terminal, and ``VisibleOutput`` catches whatever a command prints without it."""

from __future__ import annotations

import json
import sys
import unicodedata
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, TextIO

from jobtui.models.clock import iso_utc, utcnow
from jobtui.models.visible import folded_line, json_for_terminal, visible, visible_line


def age(moment: datetime | None, now: datetime | None = None) -> str:
    """How long ago ``moment`` was: "3s", "5m", "2h", "4d" ("-" for none)."""
    if moment is None:
        return "-"
    seconds = ((now or utcnow()) - moment).total_seconds()
    future = seconds < 0
    seconds = abs(seconds)
    if seconds < 60:
        text = f"{seconds:.0f}s"
    elif seconds < 3600:
        text = f"{seconds / 60:.0f}m"
    elif seconds < 86400:
        text = f"{seconds / 3600:.1f}h"
    else:
        text = f"{seconds / 86400:.1f}d"
    return f"in {text}" if future else text


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 120:
        return f"{seconds:.1f}s"
    return f"{seconds / 60:.1f}m"


def megabytes(value: int | None) -> str:
    return "-" if not value else f"{value / 1048576:.0f}MB"


def clip(text: Any, width: int) -> str:
    """Job text for a column ``width`` wide: whitespace folded, control characters shown."""
    text = folded_line(text)
    return text if len(text) <= width else text[: width - 1] + "…"


def display_width(text: str) -> int:
    """Terminal columns ``text`` takes: wide and full-width characters (CJK) two, combining
    marks none, the rest one (the wcwidth rule, without a dependency)."""
    if text.isascii():
        return len(text)
    width = 0
    for char in text:
        if unicodedata.combining(char):
            continue
        width += 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1
    return width


def pad(text: str, width: int) -> str:
    """``text`` padded with spaces to ``width`` terminal columns (ljust by display width)."""
    return text + " " * max(0, width - display_width(text))


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]], out: TextIO | None = None) -> None:
    """Print rows under headers, each column as wide as its widest cell: control
    characters shown (a cell is one line), widths in terminal columns (CJK text keeps the
    columns aligned)."""
    out = out or sys.stdout
    cells = [[visible_line(c) for c in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in cells:
        for index, cell in enumerate(row):
            widths[index] = max(widths[index], display_width(cell))
    line = "  ".join(h.upper().ljust(w) for h, w in zip(headers, widths, strict=True))
    print(line.rstrip(), file=out)
    for row in cells:
        print("  ".join(pad(c, w) for c, w in zip(row, widths, strict=True)).rstrip(), file=out)


def to_json(value: Any) -> str:
    """JSON with datetimes as ISO 8601 UTC (with the offset). Exact JSON — ``json.loads``
    returns the same values — that a terminal can show: C0 controls are escaped by the
    encoder, DEL, C1 and bidi overrides by ``json_for_terminal``."""

    def default(obj: Any) -> Any:
        if isinstance(obj, datetime):
            return iso_utc(obj)
        raise TypeError(f"not JSON-serialisable: {type(obj).__name__}")

    return json_for_terminal(json.dumps(value, indent=2, default=default, ensure_ascii=False))


def field(value: Any) -> str:
    """One value of ``jobtui show``: a dict or list as one line of exact JSON, anything
    else as one line of text (a newline in an error cannot forge the next field)."""
    if isinstance(value, dict | list):
        return json_for_terminal(json.dumps(value, ensure_ascii=False, default=str))
    return visible_line(value)


class VisibleOutput:
    """A text stream that shows control characters instead of writing them (keeping line
    breaks): the CLI's stdout and stderr while a command runs, so a line that quotes job
    text or the user's input without ``visible_line`` still cannot act on the terminal."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def write(self, text: str) -> int:
        return self.stream.write(visible(text))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)


def priority_option(text: str) -> int:
    """The type of ``--priority``: an integer or a level's name (jobtui.Priority)."""
    import argparse

    from jobtui.models.status import parse_priority

    try:
        return parse_priority(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def moment_option(text: str) -> datetime:
    """The type of ``--at``: an ISO 8601 date and time. Without an offset it is this
    machine's local time, as a person at a shell means it (``at``, cron); with ``Z`` or an
    offset, that moment. Returned aware, so the store converts it to UTC."""
    import argparse

    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a date and time: use ISO 8601, e.g. 2026-12-01T09:00 (local "
            "time) or 2026-12-01T08:00Z"
        ) from None
    return moment if moment.tzinfo is not None else moment.astimezone()
