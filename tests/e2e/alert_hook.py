"""The ``--notify-hook`` of the alert tests: every payload it is called with, as one JSON
line appended to the file named by JOBTUI_E2E_ALERTS (with the pid that delivered it)."""

from __future__ import annotations

import json
import os


def record(payload: dict) -> None:
    with open(os.environ["JOBTUI_E2E_ALERTS"], "a", encoding="utf-8") as out:
        out.write(json.dumps({**payload, "pid": os.getpid()}) + "\n")
