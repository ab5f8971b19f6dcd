"""Cells for the console's tables: every piece of job data becomes a ``rich.text.Text``.

A plain ``str`` cell is parsed as Rich markup, so an error message holding ``[/x]`` would
crash a DataTable; ``Text`` is never parsed. ``Text`` does not stop escape sequences,
though: every piece of job text also passes through ``jobtui.models.visible`` here (and in
the screens that show multi-line text), so ESC, C1 and bidi overrides show, never act. Ages are computed from the snapshot's ``now``,
never from the system clock.
"""

from __future__ import annotations

from datetime import datetime

from rich.text import Text

from jobtui.models.visible import folded_line, visible, visible_line

from .snapshot import COUNT_CAP

STATE_STYLES = {
    "pending": "cyan", "waiting": "blue", "running": "bold yellow", "retrying": "magenta",
    "completed": "green", "failed": "bold red", "cancelled": "dim",
}  # fmt: skip
SPARK = "▁▂▃▄▅▆▇█"


def text(value: object, style: str = "") -> Text:
    """Any value as literal text on one line (None as empty), control characters shown."""
    return Text(visible_line(value), style=style, no_wrap=True)


def block(value: object, style: str = "") -> Text:
    """Multi-line job text (a traceback, a JSON document, a message) as literal text: its
    line breaks stay, every other control character is shown."""
    return Text(visible(value), style=style)


def clip(value: str | None, width: int) -> str:
    """Job text for a cell ``width`` wide: whitespace folded, control characters shown."""
    if not value:
        return ""
    value = folded_line(value)
    return value if len(value) <= width else value[: max(0, width - 1)] + "…"


def line(value: str | None) -> str:
    """``value`` on one line (runs of whitespace as one space) and uncut: the table cuts it
    to its column's width, which follows the terminal."""
    return clip(value, len(value or ""))


def state(status: str, cancel_requested: bool = False) -> Text:
    label = status + (" ✕" if cancel_requested and status == "running" else "")
    return Text(label, style=STATE_STYLES.get(status, ""), no_wrap=True)


def seconds(value: float | None) -> str:
    """A duration in the largest sensible unit: 45s, 12m, 3h, 2d."""
    if value is None:
        return "—"
    value = max(0.0, value)
    if value < 1:
        return f"{value * 1000:.0f}ms"
    if value < 60:
        return f"{value:.0f}s" if value >= 10 else f"{value:.1f}s"
    if value < 3600:
        return f"{value / 60:.0f}m"
    if value < 86400:
        return f"{value / 3600:.1f}h"
    return f"{value / 86400:.1f}d"


def age(moment: datetime | None, now: datetime) -> str:
    if moment is None:
        return "—"
    delta = (now - moment).total_seconds()
    return seconds(delta) if delta >= 0 else "in " + seconds(-delta)


def stamp(moment: datetime | None) -> str:
    return "—" if moment is None else moment.strftime("%Y-%m-%d %H:%M:%S") + " UTC"


def count(value: int) -> str:
    """A count, with capped ones shown as a floor ("10k+")."""
    if value >= COUNT_CAP:
        return f"{COUNT_CAP // 1000}k+"
    return f"{value:,}"


def megabytes(value: int) -> str:
    return f"{value / 1_048_576:.0f} MB" if value else "—"


def bar(percent: float | None, width: int = 10) -> Text:
    """A progress bar and its percentage, e.g. ``█████▌    55%``."""
    if percent is None:
        return Text("")
    percent = max(0.0, min(100.0, percent))
    cells = percent / 100 * width
    full = int(cells)
    half = "▌" if cells - full >= 0.5 and full < width else ""
    body = "█" * full + half
    out = Text(body.ljust(width), style="green" if percent >= 100 else "yellow", no_wrap=True)
    out.append(f"{percent:4.0f}%", style="")
    return out


def sparkline(values: tuple[int, ...] | list[int]) -> str:
    peak = max(values) if values else 0
    if peak <= 0:
        return SPARK[0] * len(values)
    return "".join(SPARK[min(7, round(v / peak * 7))] for v in values)


def short_id(job_id: str | None) -> str:
    """The last 8 hex digits: a UUIDv7 starts with its timestamp, so jobs enqueued together
    share their first digits and differ in the last ones."""
    return "" if not job_id else job_id[-8:]


def error_text(error_type: str | None, error: str | None, width: int = 60) -> Text:
    if not error_type and not error:
        return Text("")
    label = f"{error_type}: {error}" if error_type and error else (error_type or error or "")
    return Text(clip(label, width), style="red", no_wrap=True)
