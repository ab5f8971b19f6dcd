"""Tasks of the task catalog tests, imported only by the real jobtui-supervisor: the test
process and the CLI enqueue them by name, as a web application would."""

from __future__ import annotations

import json
import os

from jobtui import task


def _append(path: str, line: str) -> None:
    with open(path, "a") as out:
        out.write(line + "\n")


@task(name="catalog.never_again", max_retries=0, queue="ux")
def never_again(path: str) -> None:
    """Must never run twice (a payment, an e-mail)."""
    _append(path, "run")
    raise RuntimeError("failed once, for good")


@task(name="catalog.plain")
def plain(path: str) -> None:
    """No options of its own: the supervisor's --default-* decide."""
    _append(path, "run")
    raise RuntimeError("plain failure")


def record_notification(payload: dict) -> None:
    """--notify-hook: one JSON line per notification."""
    _append(os.environ["CATALOG_HOOK_FILE"], json.dumps(payload))


def broken_hook(payload: dict) -> None:
    raise RuntimeError("the hook itself fails")
