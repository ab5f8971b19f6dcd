"""Stopping a worker's whole process tree: SIGTERM to its group, SIGKILL after a grace,
then a sweep of whatever this supervisor inherited as a subreaper.

``killpg`` misses a grandchild that double-forked into its own session (RELIABILITY.md,
fact 4); as a child subreaper the supervisor adopts such orphans once their parent dies,
so after a kill every child that is not a worker is a leftover of some job: swept.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from collections.abc import Iterable

from . import procinfo
from .pool import KillPlan, WorkerHandle

log = logging.getLogger(__name__)


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        pass
    except PermissionError:
        log.warning("not allowed to signal process group %d", pid)
    try:  # the leader too, in case it left its group
        os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def start_kill(worker: WorkerHandle, reason: str, kind: str, grace_s: float) -> None:
    """Begin stopping ``worker``: SIGTERM now (SIGKILL at once when ``grace_s`` is 0)."""
    if worker.kill is not None:
        if grace_s == 0 and not worker.kill.kill_sent:
            worker.kill.kill_after_mono = time.monotonic()
            escalate(worker)
        return
    now = time.monotonic()
    worker.kill = KillPlan(reason=reason, kind=kind, term_sent_mono=now,
                           kill_after_mono=now + grace_s)  # fmt: skip
    if grace_s > 0:
        _signal_group(worker.pid, signal.SIGTERM)
    else:
        worker.kill.kill_sent = True
        _signal_group(worker.pid, signal.SIGKILL)


def escalate(worker: WorkerHandle) -> None:
    """SIGKILL the group once the grace has passed."""
    plan = worker.kill
    if plan is not None and not plan.kill_sent and time.monotonic() >= plan.kill_after_mono:
        plan.kill_sent = True
        log.info("worker %s (pid %d) ignored SIGTERM: SIGKILL", worker.name, worker.pid)
        _signal_group(worker.pid, signal.SIGKILL)


def kill_group_now(pid: int) -> None:
    """SIGKILL a whole process group at once (cold shutdown)."""
    _signal_group(pid, signal.SIGKILL)


def sweep_orphans(worker_pids: Iterable[int]) -> int:
    """SIGKILL every descendant of this process that is not a worker (with its own tree);
    returns how many processes were signalled."""
    keep = set(worker_pids)
    killed = 0
    for child in procinfo.children(os.getpid()):
        if child in keep:
            continue
        for pid in [*procinfo.descendants(child), child]:
            try:
                os.kill(pid, signal.SIGKILL)
                killed += 1
            except (ProcessLookupError, PermissionError):
                pass
    if killed:
        log.info("swept %d leftover process(es) of killed jobs", killed)
    return killed
