"""The supervisor's log lines: job text inside them is shown, never emitted.

A record quotes job text — a failed job's error, its task name — and the log goes to a
terminal or to a file someone ``tail -f``s: an ESC there would recolour, retitle or clear
that terminal, and a newline in an error would start a line that reads like a record of
its own. The formatter passes the whole formatted record (message, arguments, exception
text) through ``jobtui.models.visible`` and indents every continuation line, so each
record starts exactly one unindented line.
"""

from __future__ import annotations

import logging

from jobtui.models.visible import visible

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
#: What starts each continuation line of a record (a traceback, a multi-line error).
CONTINUATION = "\n    "


class VisibleFormatter(logging.Formatter):
    """A ``logging.Formatter`` whose lines show control characters instead of emitting
    them, with continuation lines indented."""

    def format(self, record: logging.LogRecord) -> str:
        return visible(super().format(record)).replace("\n", CONTINUATION)


def visible_handler(stream) -> logging.Handler:  # noqa: ANN001 - a text stream
    """A stream handler for ``stream`` with ``VisibleFormatter`` and the daemon's format."""
    handler = logging.StreamHandler(stream)
    handler.setFormatter(VisibleFormatter(LOG_FORMAT))
    return handler
