"""The supervisor's log lines: job text inside them is shown, never emitted.

A record quotes job text — a failed job's error, its task name — and the log goes to a
terminal or to a file someone ``tail -f``s: an ESC there would recolour, retitle or clear
that terminal, and a newline in an error would start a line that reads like a record of
its own. The text formatter passes the whole formatted record (message, arguments,
exception text) through ``jobtui.models.visible`` and indents every continuation line, so
each record starts exactly one unindented line.

``--log-format json`` writes one JSON object per record instead, for a log shipper (Loki,
Elasticsearch, CloudWatch): stable keys, job text kept exact inside JSON strings (a
decoder gets the very error the task raised) and still never a raw control character on
the line (``json_for_terminal``: C0 escaped by ``json.dumps``, DEL, C1, bidi controls and
lone surrogates as ``\\uXXXX``).
"""

from __future__ import annotations

import json
import logging
import time

from jobtui.models.visible import json_for_terminal, visible

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
LOG_FORMATS = ("text", "json")
#: What starts each continuation line of a record (a traceback, a multi-line error).
CONTINUATION = "\n    "
#: The job keys a record may carry (``extra=job_fields(...)``), in the order written.
JOB_KEYS = ("job_id", "task", "queue", "attempt", "worker")

#: This process's worker name (set in each forked worker), and its supervisor's name:
#: every JSON record of the process carries them.
_process = {"worker": None, "supervisor": None}


class VisibleFormatter(logging.Formatter):
    """A ``logging.Formatter`` whose lines show control characters instead of emitting
    them, with continuation lines indented."""

    def format(self, record: logging.LogRecord) -> str:
        return visible(super().format(record)).replace("\n", CONTINUATION)


def first_line(exc: BaseException) -> str:
    """An exception's reason for one log line: its first line, or its repr when empty."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else repr(exc)


def job_fields(job_id: str, task: str | None = None, queue: str | None = None,
               attempt: int | None = None, worker: str | None = None) -> dict:  # fmt: skip
    """The ``extra=`` of a record about one job: the JSON format writes them as keys (the
    text format already says them in its message)."""
    return {"job_id": job_id, "task": task, "queue": queue, "attempt": attempt,
            "worker": worker}  # fmt: skip


def name_process(*, worker: str | None = None, supervisor: str | None = None) -> None:
    """Name this process in its JSON records (a worker right after its fork)."""
    if worker is not None:
        _process["worker"] = worker
    if supervisor is not None:
        _process["supervisor"] = supervisor


def _running_job() -> object | None:
    """The job a worker is running (a task's own log records get its keys), if any."""
    import sys

    context = sys.modules.get("jobtui.context")
    return None if context is None else context._current.get()


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line: ``time`` (ISO 8601 UTC), ``level``,
    ``logger``, ``message``, then where they apply ``supervisor``, ``job_id``, ``task``,
    ``queue``, ``attempt``, ``worker`` and ``exception`` (its traceback). A record logged
    by a task while it runs carries its job's keys too."""

    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        entry: dict = {
            "time": f"{stamp}.{int(record.msecs):03d}+00:00",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if _process["supervisor"] is not None:
            entry["supervisor"] = _process["supervisor"]
        fields = record.__dict__
        if "job_id" not in fields:
            job = _running_job()
            if job is not None:
                fields = {"job_id": job.id, "task": job.job_type, "queue": job.queue_name,
                          "attempt": job.attempt}  # fmt: skip
        for key in JOB_KEYS:
            value = fields.get(key)
            if value is not None:
                entry[key] = value
        if "worker" not in entry and _process["worker"] is not None:
            entry["worker"] = _process["worker"]
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        try:
            text = json.dumps(entry, ensure_ascii=False, default=str)
        except (TypeError, ValueError):  # a key that is not a string, a circular value
            text = json.dumps({k: str(v) for k, v in entry.items()}, ensure_ascii=False)
        return json_for_terminal(text)


def visible_handler(stream, log_format: str = "text") -> logging.Handler:  # noqa: ANN001 - a text stream
    """A stream handler for ``stream``: ``VisibleFormatter`` and the daemon's format, or
    ``JsonFormatter`` for ``log_format="json"``."""
    handler = logging.StreamHandler(stream)
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(VisibleFormatter(LOG_FORMAT))
    return handler
