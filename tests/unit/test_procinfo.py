"""The supervisor's /proc readings agree with psutil's, process by process."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import psutil
import pytest

from jobtui.supervisor import procinfo

pytestmark = pytest.mark.skipif(not procinfo.IS_LINUX, reason="reads /proc (Linux only)")


def _wait_for(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def test_start_time_is_psutils_create_time():
    with subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"]) as child:
        try:
            for pid in (os.getpid(), child.pid):
                assert procinfo.start_time(pid) == pytest.approx(
                    psutil.Process(pid).create_time(), abs=1e-6
                )
        finally:
            child.kill()


def test_a_zombie_a_dead_pid_and_a_reused_pid_are_not_running():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    started = procinfo.start_time(child.pid)
    assert started is not None
    _wait_for(lambda: psutil.Process(child.pid).status() == psutil.STATUS_ZOMBIE)
    assert not procinfo.is_running(child.pid, started)  # exited, not yet reaped
    child.wait()
    assert not procinfo.is_running(child.pid, started)
    assert procinfo.start_time(child.pid) is None
    me = procinfo.start_time(os.getpid())
    assert procinfo.is_running(os.getpid(), me)
    assert procinfo.is_running(os.getpid(), None)
    assert not procinfo.is_running(os.getpid(), me - 5)  # the pid, but another process


def test_children_and_descendants_match_psutil():
    # a child that starts a grandchild and waits on it
    script = "import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', "
    script += "'import time; time.sleep(30)']); time.sleep(30)"
    child = subprocess.Popen([sys.executable, "-c", script])
    try:
        _wait_for(lambda: len(psutil.Process(child.pid).children()) == 1)
        assert child.pid in procinfo.children(os.getpid())
        expected = {p.pid for p in psutil.Process(child.pid).children(recursive=True)}
        assert set(procinfo.descendants(child.pid)) == expected and len(expected) == 1
        assert procinfo.children(child.pid) == sorted(expected)
    finally:
        for pid in [*procinfo.descendants(child.pid), child.pid]:
            os.kill(pid, 9)
        child.wait()


def test_usage_reads_cpu_and_rss_as_psutil_does():
    usage = procinfo.Usage(os.getpid())
    end = time.process_time() + 0.3
    while time.process_time() < end:  # busy: the reading must show it
        pass
    cpu, rss = usage.read()
    assert cpu > 20
    assert rss == pytest.approx(psutil.Process().memory_info().rss, rel=0.05)
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    reader = procinfo.Usage(gone.pid)
    gone.wait()
    assert reader.read() is None
