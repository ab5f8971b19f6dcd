"""bench/plan_diff.py: traces reach the folder, and a lost index is reported."""

from __future__ import annotations

import sys
from pathlib import Path

from bench import plan_diff

WATCHED = "jobs_status_id"
LOSES_IT = "SELECT id FROM jobs WHERE status = 'failed' ORDER BY id DESC LIMIT 5"
KEEPS_ITS_PLAN = "SELECT status FROM jobs WHERE id = '0190a1b2-0000-7000-8000-000000000001'"


def test_ids_and_numbers_are_masked_but_not_short_values_a_partial_index_turns_on() -> None:
    one = plan_diff.shape_of(f"{KEEPS_ITS_PLAN} AND priority > 3")
    two = plan_diff.shape_of(f"{KEEPS_ITS_PLAN.replace('01', '02')} AND priority > 10")
    assert one == two
    failed = plan_diff.shape_of("SELECT id FROM jobs WHERE status = 'failed'")
    assert failed != plan_diff.shape_of("SELECT id FROM jobs WHERE status = 'pending'")
    assert plan_diff.shape_of("WHERE id IN ('a', 'b', 'c')") == "WHERE id IN (…)"


def test_capture_traces_the_statements_of_a_child_process(tmp_path: Path) -> None:
    child = "import sqlite3; c = sqlite3.connect(':memory:'); c.execute('SELECT 40 + 2')"
    code = plan_diff.capture(tmp_path / "trace", [sys.executable, "-c", child])
    assert code == 0
    traced = "".join(p.read_text() for p in (tmp_path / "trace").glob("*.sql"))
    assert "SELECT 40 + 2" in traced


def test_a_statement_that_loses_the_watched_index_is_reported(tmp_path: Path) -> None:
    trace = tmp_path / "trace"
    trace.mkdir()
    (trace / "1.sql").write_text(f"{LOSES_IT}\n{KEEPS_ITS_PLAN}\nSELECT 1\n")
    found = plan_diff.diff(trace, [f"DROP INDEX {WATCHED}"], [WATCHED])
    assert [change.example for change in found] == [LOSES_IT]
    assert WATCHED in found[0].before and WATCHED not in found[0].after
    # unwatched, a change to no plan is still no change
    assert plan_diff.diff(trace, ["CREATE TABLE unrelated (x)"], []) == []
