"""Job text made safe for a terminal: control characters are shown, never emitted.

Errors, progress messages, titles, parameters, results and logs come from task code, and so
from outside: a task that raises ``RuntimeError("\\x1b]0;PWNED\\x07\\x1b[2J")`` must not set
the operator's window title or clear the screen when the console, the CLI or the
supervisor's log shows it. Rich's ``Text`` stops markup, not escape sequences, so every
layer that prints job text passes it through this one module first (DESIGN.md).

What becomes visible, and how:

- C0 controls (U+0000-U+001F) as their Unicode control pictures (U+2400 + code): ESC is
  ``␛``, BEL ``␇``, CR ``␍``, TAB ``␉``;
- DEL (U+007F) as ``␡``;
- C1 controls (U+0080-U+009F, e.g. the one-byte CSI U+009B) as ``\\x9b``;
- the bidirectional embeddings, overrides and isolates (U+202A-U+202E, U+2066-U+2069) and
  the line/paragraph separators (U+2028, U+2029) as ``\\u202e``: they reorder or break
  what a reader sees ("invoice_\\u202egnp.exe" reads as "invoice_exe.png");
- lone surrogates (U+D800-U+DFFF, which JSON text can carry: ``"\\ud800"``) as ``\\ud800``:
  no terminal encoding can write them, so printing one would crash the command.

Deliberately tiny and free of imports: the supervisor's daemon loads it (its memory is
part of its contract), and ``str.translate`` over a precomputed table keeps it fast.
"""

from __future__ import annotations

#: Every code point that acts on a terminal or reorders text, except newline. (Lone
#: surrogates are handled by _encodable: 2,048 more entries would cost the daemon memory.)
_HIDDEN = (
    [*range(0x00, 0x0A), *range(0x0B, 0x20), 0x7F, *range(0x80, 0xA0)]
    + [*range(0x202A, 0x202F), *range(0x2066, 0x206A), 0x2028, 0x2029]
)  # fmt: skip


def _picture(code: int) -> str:
    if code < 0x20:
        return chr(0x2400 + code)
    if code == 0x7F:
        return "\u2421"
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}"


#: Multi-line text: newlines stay line breaks, everything else in _HIDDEN is shown.
_MULTILINE = {code: _picture(code) for code in _HIDDEN}
#: One line: a newline is shown too (``␤``), so no text can start a line of its own.
_ONE_LINE = {**_MULTILINE, 0x0A: "\u2424"}
#: Inside JSON text: json.dumps already escapes C0 (ESC is ``\\u001b``); these remain raw
#: with ensure_ascii=False, and their ``\\uXXXX`` escape is the same string to a decoder.
_JSON = {code: f"\\u{code:04x}" for code in _HIDDEN if code >= 0x7F}

#: Every code point ``visible`` and ``visible_line`` replace (tests check against it).
HIDDEN_CODES = frozenset(_HIDDEN)


def _encodable(text: str) -> str:
    """``text`` with each lone surrogate as ``\\udXXX`` (the form JSON reads back), so that
    it can be written in UTF-8; the same string when it already can (the usual case)."""
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


def visible(text: object) -> str:
    """``text`` (any value, None as "") for a multi-line view — a traceback, a JSON
    document, a detail pane: line breaks stay (CRLF becomes one), every other control
    character and bidi override is shown instead of acting."""
    value = "" if text is None else str(text)
    if "\r\n" in value:
        value = value.replace("\r\n", "\n")
    return _encodable(value.translate(_MULTILINE))


def visible_line(text: object) -> str:
    """``text`` (any value, None as "") for one line — a table cell, a toast, a log line:
    as ``visible``, and a newline is shown as ``␤`` so the text cannot start a line that
    looks like another row or another log record."""
    return _encodable(("" if text is None else str(text)).translate(_ONE_LINE))


def folded_line(text: object) -> str:
    """``text`` on one line for a narrow cell: runs of whitespace (spaces, tabs, newlines)
    become one space, as a reader expects in a table, and the rest is ``visible_line``."""
    return visible_line(" ".join(("" if text is None else str(text)).split()))


def json_for_terminal(document: str) -> str:
    """A ``json.dumps(..., ensure_ascii=False)`` document with DEL, C1, bidi characters and
    lone surrogates escaped as ``\\uXXXX``: ``json.loads`` gives back exactly the same
    value, and a terminal shows the escape instead of acting on the character."""
    return _encodable(document.translate(_JSON))
