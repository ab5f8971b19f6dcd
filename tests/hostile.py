"""Hostile job text for the terminal-safety tests: every case of
tests/data/hostile-text.json (a copy of the shared list) plus the string of issue 12."""

from __future__ import annotations

import json
from pathlib import Path

from jobtui.models.visible import HIDDEN_CODES

#: The error a task raised in issue 12: colour, markup, a window title and a screen clear.
PWNED = "\x1b[31mRED\x1b[0m [red]x[/red] \x1b]0;PWNED\x07 \x1b[2J clear"

_CASES = Path(__file__).parent / "data" / "hostile-text.json"


def _load() -> dict[str, str]:
    cases = json.loads(_CASES.read_text(encoding="utf-8"))["cases"]
    cases["issue_12"] = PWNED
    return cases


HOSTILE: dict[str, str] = _load()


def acting_chars(text: str) -> str:
    """The characters of ``text`` that a terminal would act on (newline included)."""
    return "".join(c for c in text if ord(c) in HIDDEN_CODES or c == "\n")
