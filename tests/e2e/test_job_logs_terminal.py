"""Issue 16 in a real terminal: the real ``jobtui`` console in tmux, on a job a real
supervisor runs: ``l`` shows what the job printed (hostile text shown, not acted on: the
pane's title stays), ``S`` shows the function it waits in."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest
from hostile import PWNED
from supervisor_harness import wait_until

import jobtui
from jobtui.models.queries import get_job

sys.path.insert(0, str(Path(__file__).parent.parent / "tui"))
from tui_tmux import Tmux  # noqa: E402 - the console tests' terminal driver

pytestmark = [
    pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed"),
    pytest.mark.timeout(120),
]


def test_logs_and_stack_keys_in_the_real_console(cluster, db_url):
    job = jobtui.enqueue("log_tasks.says_then_waits", args=["hello " + PWNED, "go"])
    cluster.start(imports=("supervisor_tasks", "log_tasks"))
    wait_until(lambda: get_job(job.id).started_at is not None, 20, "the job running")
    term = Tmux([sys.executable, "-m", "jobtui", "--database", db_url], size=(120, 40))
    try:
        title = term.pane_title()
        term.wait_for("then_waits", describe="the job in the Jobs view")  # the column may clip
        term.send("Enter")
        term.wait_for("Overview", describe="the job's detail")
        term.send("l")
        screen = term.wait_for("out hello ␛[31mRED␛[0m", describe="the job's printed line")
        assert "␛]0;PWNED␇" in screen and "clear" in screen
        term.send("S")
        screen = term.wait_for("in wait_here", describe="the live stack")
        assert "Thread main (runs the job), innermost frame last:" in screen
        assert term.pane_title() == title  # the OSC in the job's output set no title
    finally:
        term.close()
    cluster.open_gate("go")
    cluster.wait_status([job.id])
