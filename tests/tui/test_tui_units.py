"""Pure pieces of the console: the confirmation rule, the enqueue form, cells, the keymap,
the fingerprint, and the layering (the data side never imports Textual)."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime, timedelta

import pytest

from jobtui.tui import formatting as fmt
from jobtui.tui.keymap import KEYMAP, MUTATING, keymap_markdown, keymap_rows
from jobtui.tui.operations import (
    TYPED_CONFIRM_AT,
    Confirm,
    confirmation_for,
    describe_counts,
    parse_enqueue_form,
)
from jobtui.tui.stats import fingerprint


@pytest.mark.parametrize(("action", "count", "all_matching", "expected"), [
    ("retry", 1, False, Confirm.NONE),
    ("priority_up", 1, False, Confirm.NONE),
    ("cancel", 1, False, Confirm.YES_NO),
    ("kill", 1, False, Confirm.YES_NO),
    ("delete", 1, False, Confirm.YES_NO),
    ("retry", 2, False, Confirm.COUNTS),
    ("delete", 99, False, Confirm.COUNTS),
    ("retry", TYPED_CONFIRM_AT, False, Confirm.TYPED),
    ("cancel", 5000, False, Confirm.TYPED),
    ("retry", 1, True, Confirm.TYPED),
])  # fmt: skip
def test_confirmation_scales_with_the_blast_radius(action, count, all_matching, expected):
    assert confirmation_for(action, count, all_matching=all_matching) is expected


def test_describe_counts():
    assert describe_counts(["running", "pending", "pending"]) == "3 jobs: 2 pending, 1 running"
    assert describe_counts(["failed"]) == "1 job: 1 failed"


def test_enqueue_form_parsing():
    r = parse_enqueue_form(" t.x ", '[1, "a"]', "q", "5", "2.5")
    assert (r.task, r.args, r.kwargs, r.queue, r.priority, r.delay) == (
        "t.x",
        (1, "a"),
        {},
        "q",
        5,
        2.5,
    )
    assert parse_enqueue_form("t", '{"to": "a"}').kwargs == {"to": "a"}
    both = parse_enqueue_form("t", '{"args": [1], "kwargs": {"b": 2}}')
    assert (both.args, both.kwargs) == ((1,), {"b": 2})
    empty = parse_enqueue_form("t", "")
    assert (empty.args, empty.kwargs, empty.queue, empty.priority, empty.delay) == (
        (),
        {},
        None,
        None,
        None,
    )
    for bad, message in (("", "task"), ("[1", "JSON"), ("3", "array")):
        with pytest.raises(ValueError, match=message):
            parse_enqueue_form("t" if bad else "", bad)
    assert parse_enqueue_form("t", "", priority=" High ").priority == 10  # a level's name
    with pytest.raises(ValueError, match="priority 'urgent': an integer or one of low, normal"):
        parse_enqueue_form("t", "", priority="urgent")
    with pytest.raises(ValueError, match="delay"):
        parse_enqueue_form("t", "", delay="-1")


def test_cells():
    now = datetime(2026, 1, 1, 12)
    assert fmt.age(now - timedelta(seconds=90), now) == "2m"
    assert fmt.age(now + timedelta(seconds=30), now) == "in 30s"
    assert fmt.seconds(None) == "—" and fmt.seconds(0.25) == "250ms"
    assert fmt.seconds(5400) == "1.5h" and fmt.seconds(2.5) == "2.5s"
    assert fmt.count(9_999) == "9,999" and fmt.count(10_000) == "10k+"
    assert fmt.bar(55, 10).plain == "█████▌    " + "  55%"
    assert fmt.bar(250, 4).plain == "████ 100%"
    assert fmt.sparkline([0, 1, 2, 4]) == "▁▃▅█" and fmt.sparkline([0, 0]) == "▁▁"
    assert fmt.short_id("019bc1a2-0001-7000-8000-0000deadbeef") == "deadbeef"
    assert fmt.text("[bold]x[/]").plain == "[bold]x[/]"  # literal, never markup
    assert fmt.clip("a  b\nc", 10) == "a b c" and fmt.clip("abcdef", 4) == "abc…"


def test_fingerprint():
    assert fingerprint("user 42 at a@b.io id 019bc1a2-0001-7000-8000-0000deadbeef") == (
        "user <n> at <email> id <id>"
    )
    assert fingerprint("KeyError: 'sku-17'\nmore lines") == "KeyError: '…'"
    assert fingerprint(None) == ""


def test_keymap_covers_the_actions_and_read_only_hides_writes():
    from jobtui.tui.app import JobtuiApp
    from jobtui.tui.screens.detail import JobDetailScreen
    from jobtui.tui.screens.jobs import JobsScreen
    from jobtui.tui.screens.queues import QueuesScreen
    from jobtui.tui.screens.scheduled import ScheduledScreen
    from jobtui.tui.screens.workers import WorkersScreen

    owners = (JobtuiApp, JobsScreen, JobDetailScreen, QueuesScreen, ScheduledScreen,
              WorkersScreen)  # fmt: skip
    for _, _, _, action in KEYMAP:
        if action:
            assert any(hasattr(cls, f"action_{action}") for cls in owners), action
    bound = {b.action for cls in owners for b in cls.BINDINGS}
    assert MUTATING <= bound
    assert len(keymap_rows(read_only=True)) < len(keymap_rows())
    assert not any("cancel" in what for _, _, what in keymap_rows(read_only=True))
    assert "| jobs | `c` |" in keymap_markdown()


def test_the_data_side_never_imports_textual():
    code = (
        "import sys, json\n"
        "import jobtui.tui, jobtui.tui.source, jobtui.tui.filters, jobtui.tui.snapshot\n"
        "import jobtui.tui.stats, jobtui.tui.operations, jobtui.tui.clock, jobtui.tui.keymap\n"
        "import jobtui.tui.formatting, jobtui.tui.demo_session\n"
        "import jobtui.models, jobtui.supervisor.main, jobtui.cli\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('textual'))))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []
    code = ("import sys, jobtui.models, jobtui.supervisor.main, jobtui.supervisor.loop\n"
            "print([m for m in sys.modules if m.startswith('jobtui.tui')])")  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_k_asks_as_the_help_and_the_readme_say():
    """One behaviour for K: TUI.md's rule (a y/n modal for killing one job), said alike by
    the code, ``?`` and README (which said "no asking")."""
    from pathlib import Path

    from jobtui.tui.operations import Confirm, confirmation_for

    assert confirmation_for("kill", 1) is Confirm.YES_NO
    (what,) = [what for _, keys, what in keymap_rows() if keys == "K"]
    assert "y/n" in what and "no asking" not in what
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    assert "`K` does not ask" not in readme and "`K` asks y/n" in readme


def test_readme_shows_the_keymap_the_console_has():
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    assert "<!-- console-keymap -->\n" + keymap_markdown() + "\n" in readme


def test_a_prefetched_job_says_it_waits_for_its_worker():
    """Claimed behind its worker's current job, a job is `running` without a start time:
    the list and the detail say it waits rather than show it running since its claim."""
    from tui_fakes import FIXED_NOW, job

    from jobtui.tui.screens.detail import overview_text
    from jobtui.tui.screens.jobs import info_cell, job_cells
    from jobtui.tui.snapshot import JobDetail

    waiting = job(3, "running", worker="host-1-w1")
    assert info_cell(waiting, FIXED_NOW).plain == "prefetched: waits for its worker"
    assert job_cells(waiting, FIXED_NOW, False)[6].plain == "—"  # no age: not begun
    running = job(4, "running", worker="host-1-w1", started_at=FIXED_NOW, progress=50.0)
    assert "50%" in info_cell(running, FIXED_NOW).plain
    blank = {name: None for name in JobDetail.__dataclass_fields__}
    detail = JobDetail(**{**blank, "row": waiting, "tags": (), "depends_on": (),
                          "attempts": (), "dependants": ()})  # fmt: skip
    assert "started    not yet: prefetched" in overview_text(detail, FIXED_NOW).plain


def test_the_detail_shows_a_waiting_jobs_deadline_and_the_metadata():
    from dataclasses import replace

    from tui_fakes import DETAIL, FIXED_NOW, job

    from jobtui.tui.screens.detail import overview_text

    waiting = replace(DETAIL, row=job(2, "pending"), deadline=FIXED_NOW)
    text = overview_text(waiting, FIXED_NOW).plain
    assert "deadline   2026-01-15 12:00:00 UTC" in text
    assert 'metadata   {"source": "cron"}' in text
    ended = overview_text(replace(waiting, row=job(2, "completed")), FIXED_NOW).plain
    assert "deadline" not in ended  # it only matters before a job starts
