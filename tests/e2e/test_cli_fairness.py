"""The CLI and console surfaces of fairness and aging (issue 14, item 7): ``jobtui aging``,
``status`` (text and --json), ``show`` with a job's fair key and aging, hostile fair keys."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from hostile import HOSTILE, acting_chars

import jobtui
from jobtui.cli import main
from jobtui.models import Job
from jobtui.models.aging import age_queue
from jobtui.models.clock import utcnow

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def cli(db, db_url, capsys):
    def run(*args: str) -> tuple[int, str, str]:
        code = main(["--database", db_url, *args])
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run


def test_aging_sets_a_queue_period_and_status_reports_it_with_the_fair_keys(cli, db):
    jobtui.enqueue("t", queue="mail", fair_key="tenant-a")
    jobtui.enqueue("t", queue="mail", fair_key="tenant-b")
    code, out, _ = cli("aging", "mail", "10m")
    assert code == 0 and "10m" in out
    code, out, _ = cli("status", "--json")
    mail = json.loads(out)["queues"]["mail"]
    assert (mail["fair_keys"], mail["priority_aging_s"]) == (2, 600.0)
    code, out, _ = cli("status")
    header, row = (line for line in out.splitlines() if line.startswith(("QUEUE", "mail")))
    assert header.split()[-3:] == ["FAIR", "KEYS", "AGING"]
    assert row.split()[-2:] == ["2", "10m"]
    assert cli("aging", "mail", "off")[0] == 0
    assert json.loads(cli("status", "--json")[1])["queues"]["mail"]["priority_aging_s"] == 0
    code, out, _ = cli("aging", "mail", "default", "--json")
    assert json.loads(out) == {"action": "aging", "queue": "mail", "priority_aging_s": None}


@pytest.mark.parametrize(
    "args", [("mail", "soon"), ("mail", "5x"), ("mail", "0.01s"), ("nosuch", "10m")]
)
def test_bad_aging_input_is_one_line_and_changes_nothing(cli, db, args):
    jobtui.enqueue("t", queue="mail")
    code, out, err = cli("aging", *args)
    assert code != 0 and out == "" and len(err.strip().splitlines()) == 1, err
    assert json.loads(cli("status", "--json")[1])["queues"]["mail"]["priority_aging_s"] is None


def test_show_gives_the_fair_key_and_the_aged_priority(cli, db):
    job = jobtui.enqueue("t", priority=0, fair_key="tenant-a")
    with db.atomic():
        age_queue(db, "default", 60, utcnow() + timedelta(seconds=3 * 60 + 1))
    code, out, _ = cli("show", job.id)
    lines = out.splitlines()
    assert any(ln.split() == ["priority", "0", "(aged", "+3)"] for ln in lines), out
    assert any(ln.split() == ["fair_key", "tenant-a"] for ln in lines), out
    data = json.loads(cli("show", job.id, "--json")[1])
    assert (data["priority"], data["base_priority"], data["fair_key"]) == (3, 0, "tenant-a")


def test_hostile_fair_keys_are_shown_never_emitted(cli, db, db_url):
    from jobtui.tui.screens.detail import overview_text
    from jobtui.tui.source import DataSource

    for name, text in HOSTILE.items():
        key = text.replace("\x00", "") if db_url.startswith("postgres") else text
        key = key[:200] or "empty"
        job = jobtui.enqueue("t", fair_key=key)
        code, out, _ = cli("show", job.id)
        assert code == 0
        leaked = acting_chars(out.replace("\n", ""))
        assert leaked == "", (name, leaked)
        detail = DataSource(db).job_detail(job.id).job
        shown = overview_text(detail, utcnow()).plain
        assert acting_chars(shown.replace("\n", "")) == "", name
        assert Job.get_by_id(job.id).fair_key == key  # stored as given
