"""Edit and retry and the Audit view in the real ``jobtui``, in tmux: a failed job with
hostile parameters is edited from the Failures view (bad JSON first, then good), the job
row holds the new arguments, the Audit view lists the edit, and the terminal's title is
never touched."""

from __future__ import annotations

import shutil
import socket
import sys

import pytest
from hostile import PWNED
from tui_tmux import Tmux

from jobtui.api import enqueue
from jobtui.models import Job, JobAttempt, store
from jobtui.models.audit import AuditEntry
from jobtui.models.clock import utcnow

pytestmark = [
    pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed"),
    pytest.mark.timeout(120),
]


def test_edit_and_retry_then_the_audit_view_in_a_real_terminal(tmp_path):
    url = f"sqlite:///{tmp_path / 'jobs.db'}"
    store.reset()
    store.use_database(url)
    job = enqueue("tests.hostile", args=[PWNED])
    Job.update(status="failed", attempt=1, failed_at=utcnow(), error_type="E",
               error_message="bad input").where(Job.id == job.id).execute()  # fmt: skip
    JobAttempt.insert(job=job.id, attempt=1, outcome="failed", error_message="bad input").execute()
    title = socket.gethostname()
    term = Tmux([sys.executable, "-m", "jobtui", "--database", url], size=(120, 40))
    try:
        term.wait_for(job.id[-8:], describe="the jobs table")
        term.send("4")
        term.wait_for("failed jobs in 1 groups", describe="the failure group")
        term.send("E")
        term.wait_for("Edit and retry", describe="the form")
        # JSON in the field: the OSC's ESC and BEL shown as JSON escapes, never sent
        term.wait_for("\\u001b]0;PWNED\\u0007", describe="the hostile argument, escaped")
        assert term.pane_title() == title
        term.send("C-u")  # the field emptied: its placeholder shows
        term.wait_for(lambda s: "▊  []" in s and "PWNED" not in s, describe="args cleared")
        term.type("[1,")
        term.wait_for("▊  [1,", describe="the bad JSON typed")
        term.send("Enter")
        term.wait_for("args: not valid JSON", describe="the error, the form still open")
        assert Job.get_by_id(job.id).status == "failed"
        term.send("C-u")
        term.wait_for("▊  []", describe="args cleared again")
        term.type('["fixed"]')
        term.wait_for('▊  ["fixed"]', describe="the good JSON typed")
        term.send("Enter")
        term.wait_for(lambda s: "Edit and retry" not in s, describe="the form closed")
        term.wait_for(lambda _: Job.get_by_id(job.id).status == "pending",
                      describe="the retry written (a worker thread)")  # fmt: skip
        row = Job.get_by_id(job.id)
        assert row.status == "pending" and row.parameters == {"args": ["fixed"], "kwargs": {}}
        assert JobAttempt.get(JobAttempt.job == job.id).parameters == {"args": [PWNED],
                                                                       "kwargs": {}}  # fmt: skip
        term.send("7")
        term.wait_for(
            lambda s: "edit" in s and job.id[:13] in s, describe="the Audit view lists the edit"
        )  # (where: checked below)
        assert [(r.action, r.where) for r in AuditEntry.select()] == [("edit", "console")]
        assert term.pane_title() == title
        term.send("q")
        assert term.exit_code() == 0
    finally:
        term.close()
        store.reset()
