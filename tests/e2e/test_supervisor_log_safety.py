"""Issue 12: the supervisor's log shows job text with its control characters visible, and a
newline in a job's error cannot start a line that reads like a record of its own."""

from __future__ import annotations

import re

import pytest
from hostile import PWNED, acting_chars

import jobtui

pytestmark = pytest.mark.timeout(60)

FORGED = "2026-01-01 00:00:00,000 ERROR jobtui.supervisor: forged record"
RECORD = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} [A-Z]+ [\w.]+: ")


def test_a_hostile_error_reaches_the_log_visible_and_on_its_own_record(sqlite_cluster):
    cluster = sqlite_cluster
    text = PWNED + " \x9b31m \u202egnp.exe\n" + FORGED
    failed = jobtui.enqueue("hostile_tasks.hostile_failure", args=[text], title=PWNED)
    done = jobtui.enqueue("hostile_tasks.hostile_result", args=[PWNED])
    sup = cluster.start("--log-level", "INFO", imports=("supervisor_tasks", "hostile_tasks"))
    rows = cluster.wait_status([failed.id, done.id])
    assert (rows[failed.id].status, rows[done.id].status) == ("failed", "completed")
    assert rows[failed.id].error_message == text  # the data stays exact; only its display
    cluster.stop()
    raw = sup.log_path.read_bytes()
    assert b"\x1b" not in raw and b"\x07" not in raw and b"\xc2\x9b" not in raw
    log = raw.decode("utf-8")
    assert acting_chars(log.replace("\n", "")) == ""
    assert "failed for good" in log and "␛[31mRED␛[0m [red]x[/red] ␛]0;PWNED␇" in log
    assert "\\x9b31m \\u202egnp.exe" in log
    lines = log.splitlines()
    assert not any(line.startswith(FORGED) for line in lines)
    assert any(line == "    " + FORGED for line in lines)  # a continuation, indented
    assert all(RECORD.match(line) or line.startswith("    ") for line in lines), log
