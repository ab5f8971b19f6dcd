"""Pure parts of crash-loop quarantine and live scaling: how a worker's end is described,
which supervisor serves a queue, how its groups read."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

from jobtui.models.outcomes import quarantine_message
from jobtui.models.scaling import describe_queues, serves
from jobtui.supervisor.pool import describe_exit


def _status(code: str) -> int:
    proc = subprocess.Popen([sys.executable, "-c", code])
    return os.waitpid(proc.pid, 0)[1]


def test_a_workers_end_reads_as_a_reason_and_as_a_crash():
    killed = _status("import os, signal; os.kill(os.getpid(), signal.SIGKILL)")
    assert describe_exit(killed, 812 * 1048576) == (
        "killed by signal 9 (SIGKILL); worker peak RSS 812 MB",
        "SIGKILL, peak RSS 812 MB",
    )
    exited = _status("import os; os._exit(3)")
    assert describe_exit(exited) == ("worker exited with code 3", "exit code 3")
    assert quarantine_message(2, "SIGKILL, peak RSS 812 MB") == (
        "quarantined: killed its worker 2 times (SIGKILL, peak RSS 812 MB)"
    )
    assert signal.SIGKILL == 9


def test_which_groups_serve_a_queue_and_how_they_read():
    assert serves({"emails": 2}, "emails") and serves({"*": 1}, "emails")
    assert serves({"a,emails": 2}, "emails") and not serves({"a,b": 2, "c": 1}, "emails")
    assert describe_queues({"emails": 4, "*": 2}, {"emails": [1, 8]}) == (
        "emails=4 (auto 1-8), *=2"
    )
    assert describe_queues('{"a": 1}', None) == "a=1"  # JSON text, as a driver may give it
    assert describe_queues(None) == "" and describe_queues("not json") == ""
    assert describe_queues({"a": "x", "b": 2}, {"b": "bad"}) == "b=2"
