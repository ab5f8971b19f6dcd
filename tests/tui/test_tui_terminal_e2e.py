"""Issue 12 in a real terminal: a job whose error, title, progress message, parameters and
result carry a window-title OSC and a screen clear is opened in the real ``jobtui`` in tmux;
the pane's title stays what it was and the screen keeps showing the console."""

from __future__ import annotations

import shutil
import socket
import sys
from datetime import timedelta

import pytest
from hostile import PWNED
from tui_tmux import Tmux

from jobtui.api import enqueue
from jobtui.models import Job, store
from jobtui.models.clock import utcnow

pytestmark = [
    pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed"),
    pytest.mark.timeout(120),
]


@pytest.fixture
def hostile_database(tmp_path):
    url = f"sqlite:///{tmp_path / 'jobs.db'}"
    store.reset()
    store.use_database(url)
    failed = enqueue("tests.hostile", args=[PWNED], kwargs={"k": PWNED}, title=PWNED)
    Job.update(status="failed", attempt=1, failed_at=utcnow(), error_type="E",
               error_message=PWNED, error_traceback="Traceback:\n" + PWNED,
               result={"r": PWNED}).where(Job.id == failed.id).execute()  # fmt: skip
    running = enqueue("tests.progress")
    Job.update(status="running", attempt=1, started_at=utcnow() - timedelta(seconds=5),
               lease_token="t", progress_percentage=30.0,
               progress_message="\x1b[32mgreen\x1b]2;PWNED\x1b\\").where(
        Job.id == running.id).execute()  # fmt: skip
    yield url, failed.id
    store.reset()


@pytest.mark.parametrize("size", [(120, 40), (80, 24)], ids=["120x40", "80x24"])
def test_opening_a_hostile_job_leaves_the_terminal_title_and_screen_alone(hostile_database, size):
    url, job_id = hostile_database
    title = socket.gethostname()  # tmux's default pane title, until a program sets one
    term = Tmux([sys.executable, "-m", "jobtui", "--database", url], size=size)
    try:
        term.wait_for(job_id[-8:], describe="the jobs table")
        assert term.pane_title() == title  # the table's error and progress cells set nothing
        term.wait_for("E: ␛[31mRED", describe="the error, escaped")
        term.send("Enter")  # the running job (newest, first row): its progress message
        term.wait_for(lambda s: "Overview" in s and "␛[32mgreen␛]2;PWNED␛\\" in s,
                      describe="the progress message, escaped")  # fmt: skip
        assert term.pane_title() == title
        term.send("q")
        term.wait_for(lambda s: "Overview" not in s and job_id[-8:] in s, describe="the jobs")
        term.send("/")
        term.type("state:failed")
        term.send("Enter")
        term.wait_for("1 matching", describe="the failed job alone")
        term.send("Enter")
        term.wait_for(lambda s: "Overview" in s and job_id in s, describe="the detail screen")
        assert term.pane_title() == title  # the title line, error and progress set nothing
        term.wait_for(lambda s: "Overview" in s and "␛]0;PWNED␇" in s, describe="them escaped")
        for key, shows in (("]", "\\u001b]0;PWNED"), ("]", '"r"'), ("t", "Traceback:")):
            term.send(key)
            term.wait_for(lambda s, shows=shows: shows in s and "Overview" in s,
                          describe=f"the tab showing {shows}")  # fmt: skip
        assert term.pane_title() == title
        term.send("q")
        screen = term.wait_for(lambda s: "Overview" not in s and "matching" in s,
                               describe="the jobs table again")  # fmt: skip
        assert "E: ␛[31mRED" in screen and job_id[-8:] in screen
        assert term.pane_title() == title
        term.send("q")
        assert term.exit_code() == 0
        assert term.pane_title() == title and "PWNED" not in term.pane_title()
    finally:
        term.close()
