"""``jobtui enqueue TASK --stdin``: many jobs from JSON lines, in transactions of 1,000.

One process and one transaction per 1,000 lines instead of one process per job (200,000
``jobtui enqueue`` calls took 7.6 hours). Each line is a JSON object with the job's
``args`` and ``kwargs`` and, optionally, its own enqueue options (``priority``,
``queue``, ``delay``, ``tags``, ``unique_key``, ...); the command line's options are the
defaults for every line. Blank lines are skipped. It goes through ``enqueue_many`` (``enqueue_many_ids``: without reading the rows back), so
task defaults and ``should_enqueue`` apply as for any enqueue.

A bad line stops the run: ``line N: why`` on stderr and exit 1. Every line before it has
been enqueued (earlier transactions stay committed, and the good lines of its own chunk
are written before stopping), none from it on, so after fixing line N the rest is
``tail -n +N``. stdout still reports what was enqueued: the count, or the ids with
``--json`` — what a script needs to know where it stands.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from typing import Any, TextIO

from jobtui.models.errors import InvalidJob, JobtuiError

CHUNK_LINES = 1_000


class BadLine(JobtuiError):
    """A line of ``--stdin`` input could not be enqueued."""


def _item(text: str, number: int) -> dict[str, Any]:
    from jobtui.models.status import parse_priority

    try:
        item = json.loads(text)
    except ValueError as exc:
        raise BadLine(f"line {number}: not valid JSON: {exc}") from None
    if not isinstance(item, dict):
        raise BadLine(f'line {number}: a JSON object is needed ({{"args": [...], "kwargs": {{}}}})')
    if not isinstance(item.get("args", []), list):
        raise BadLine(f"line {number}: args must be a JSON array")
    if not isinstance(item.get("kwargs", {}), dict):
        raise BadLine(f"line {number}: kwargs must be a JSON object")
    if isinstance(item.get("priority"), str):  # a level's name, as --priority takes
        try:
            item["priority"] = parse_priority(item["priority"])
        except ValueError as exc:
            raise BadLine(f"line {number}: {exc}") from None
    return item


def _chunks(lines: TextIO) -> Iterator[list[tuple[int, str]]]:
    chunk: list[tuple[int, str]] = []
    for number, line in enumerate(lines, start=1):
        if line.strip():
            chunk.append((number, line))
            if len(chunk) == CHUNK_LINES:
                yield chunk
                chunk = []
    if chunk:
        yield chunk


def _first_bad(task: str, items: list[dict[str, Any]], options: dict[str, Any]) -> int:
    """Index of the first item ``enqueue`` refuses (the error path only: each item is
    validated alone, as the bulk insert validates them all before writing any)."""
    from jobtui.models.clock import utcnow
    from jobtui.models.enqueueing import build_row
    from jobtui.registry import task_options

    now = utcnow()
    for index, item in enumerate(items):
        try:
            name, merged = task_options(task, {**options, **item})
            build_row(name, merged, now)
        except InvalidJob:
            return index
    return len(items)


def enqueue_lines(
    task: str, lines: TextIO, options: dict[str, Any]
) -> tuple[list[str], BadLine | None]:
    """Enqueue a job per line; returns the ids enqueued, in line order, and the error of
    the line that stopped the run (None if every line was enqueued)."""
    from jobtui.api import enqueue_many_ids

    ids: list[str] = []
    for chunk in _chunks(lines):
        items: list[dict[str, Any]] = []
        error: BadLine | None = None
        for number, text in chunk:
            try:
                items.append(_item(text, number))
            except BadLine as exc:
                error = exc
                break
        try:
            ids += enqueue_many_ids(task, items, **options)
        except InvalidJob as exc:
            bad = _first_bad(task, items, options)
            good, items = items[:bad], items[bad:]
            ids += enqueue_many_ids(task, good, **options) if good else []
            number = chunk[bad][0]
            return ids, BadLine(f"line {number}: {exc}")
        if error is not None:
            return ids, error
    return ids, None


def run_stdin_enqueue(args: argparse.Namespace, options: dict[str, Any]) -> int:
    """``enqueue TASK --stdin``: print the count (or the ids with ``--json``); exit 1 on
    a bad line, after saying which and how many were enqueued before it."""
    from jobtui.cli_format import to_json

    if args.args is not None or args.kwargs is not None:
        raise JobtuiError("--stdin takes args and kwargs from each line, not --args/--kwargs")
    ids, error = enqueue_lines(args.task, sys.stdin, options)
    if args.json:
        print(to_json(ids))
    else:
        print(f"enqueued {len(ids)} job{'' if len(ids) == 1 else 's'}")
    if error is not None:
        print(f"jobtui: {error} ({len(ids)} enqueued before it, none from it on)",
              file=sys.stderr)  # fmt: skip
        return 1
    return 0


__all__ = ["CHUNK_LINES", "enqueue_lines", "run_stdin_enqueue"]
