"""The worker processes: forking them safely, and what the supervisor knows of each.

Forking rules (RELIABILITY.md, facts 3 and 4): only from the main thread, with no
database connection open (the caller closes them first), each child leading its own
process group, its stdio flushed so no buffered line is printed twice.
"""

from __future__ import annotations

import gc
import logging
import os
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from jobtui.execution import parameters_problem
from jobtui.models.actions import CANCEL_REASON
from jobtui.models.claims import ClaimedJob
from jobtui.models.clock import sql_timestamp, utcnow
from jobtui.registry import TaskRegistry

from . import linux, procinfo
from .child import rehearse, worker_main
from .config import SupervisorConfig, WorkerGroup
from .logline import name_process
from .wire import Wire

TYPE_CHECKING = False  # typing stays unimported at run time (module memory)
if TYPE_CHECKING:
    from .gates import StartGates
    from .procinfo import Usage

log = logging.getLogger(__name__)
_rehearsed = False  # the workers' code is warm in this process (child.rehearse)


@dataclass
class RunningJob:
    """A job handed to a worker: claimed, maybe not started yet (prefetched)."""

    claimed: ClaimedJob
    timeout_s: float | None = None  # the job's, else its task's
    handed_mono: float = 0.0  # when it was handed to its worker
    started_mono: float | None = None  # when its worker began it (None: still queued)
    #: When it began (UTC, as the columns store it) if that was after the turn that claimed
    #: it (a prefetched job); None while queued, and for a job begun at once (its row's
    #: started_at, the claim's time, is right).
    started_at: str | None = None
    name_written: bool = False  # the job row names its worker and when it began
    shown_waiting: bool = False  # the job row says it waits for its worker (no start time)
    cancel_sent: bool = False  # the worker was told to skip or stop it
    cancel_reason: str | None = None  # the operator's, written as its error
    kill_sent: bool = False  # an operator's kill: its process tree is being stopped
    #: The latest (percentage, message, details JSON) not yet written (the write interval
    #: held it back); None once written.
    progress: tuple[float, str | None, str | None] | None = None
    progress_written_mono: float = 0.0
    seq: int = 0  # its number in its worker's batch, if it may be taken back (gates.py)
    metered: bool = False  # its start was counted (--metrics-port): once, if taken back
    ready_rank: int = 0  # its place in the ready buffer's claim order (ready.py), kept

    @property
    def id(self) -> str:
        return self.claimed.id

    @property
    def cancel_error(self) -> str:
        """The error a cancelled run ends with: the operator's reason."""
        return self.cancel_reason or CANCEL_REASON


@dataclass
class KillPlan:
    """Why and how a worker is being stopped: TERM first, KILL after the grace."""

    reason: str  # written on the job: "timed out after 5 s"
    kind: str  # timeout | cancel | hang | lost | shutdown | retire
    term_sent_mono: float
    kill_after_mono: float
    kill_sent: bool = False


@dataclass
class WorkerHandle:
    slot: int
    name: str
    group: WorkerGroup
    pid: int
    conn: Wire
    started_mono: float
    process_started_at: float | None
    started_at: str = ""  # wall-clock UTC, as the worker row stores it
    jobs: list[RunningJob] = field(default_factory=list)  # [0] runs; the rest are prefetched
    last_message_mono: float = 0.0
    jobs_done: int = 0
    jobs_failed: int = 0
    kill: KillPlan | None = None
    retiring: bool = False  # finish the jobs it holds, then stop (recycling)
    scaled_down: bool = False  # retired by a scale-down: not replaced when it stops
    idle_since: float = 0.0  # when it last had no job (autoscale retires long-idle ones)
    max_jobs: int = 0  # --max-jobs-per-worker (0: no limit)
    stop_sent: bool = False
    exited: bool = False
    cpu_percent: float = 0.0
    rss_bytes: int = 0
    usage: Usage | None = None  # reads its CPU % and RSS (workers.py)
    info: dict | None = None  # who ran a job, for its outcomes (workers.py)
    handed_seq: int = 0  # the last number handed with a job it may be asked to give back
    control_fd: int = -1  # the pipe on which it is asked for live stacks (capture.py)

    @property
    def current(self) -> RunningJob | None:
        return self.jobs[0] if self.jobs else None

    @property
    def state(self) -> str:
        if self.kill is not None or self.stop_sent or self.scaled_down:
            return "stopping"
        return "busy" if self.jobs else "idle"

    def capacity(self, prefetch: int) -> int:
        """How many more jobs this worker may be handed now."""
        if self.kill is not None or self.retiring or self.stop_sent or self.exited:
            return 0
        room = max(0, 1 + prefetch - len(self.jobs))
        if self.max_jobs:  # never hand a worker more than it may run before it is recycled
            room = min(room, self.max_jobs - self.jobs_done - self.jobs_failed - len(self.jobs))
        return max(0, room)

    def find(self, job_id: str) -> RunningJob | None:
        for job in self.jobs:
            if job.id == job_id:
                return job
        return None


def describe_exit(status: int, peak_rss: int = 0) -> tuple[str, str]:
    """How a worker ended, from its wait status: the reason a job lost with it gets
    ("killed by signal 9 (SIGKILL); worker peak RSS 812 MB") and, shorter, the crash a
    quarantine message names ("SIGKILL, peak RSS 812 MB")."""
    if os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        try:
            name = signal.Signals(number).name
        except ValueError:
            name = "unknown signal"
        why, crash = f"killed by signal {number} ({name})", name
    else:
        why = f"worker exited with code {os.WEXITSTATUS(status)}"
        crash = f"exit code {os.WEXITSTATUS(status)}"
    if peak_rss:
        why += f"; worker peak RSS {peak_rss / 1048576:.0f} MB"
        crash += f", peak RSS {peak_rss / 1048576:.0f} MB"
    return why, crash


def spawn_workers(
    config: SupervisorConfig,
    registry: TaskRegistry,
    slots: list[tuple[int, WorkerGroup]],
    close_in_child: Callable[[], None],
    gates: StartGates | None = None,
) -> list[WorkerHandle]:
    """Fork one worker per slot. The caller must hold no open database connection.

    The forks come back to back, with no Python work between them: a page the supervisor
    writes between two forks (a handle, a start-time lookup, the allocator's bookkeeping)
    and again afterwards ends up in three copies instead of two, once per worker forked
    before it. Measured with two workers: 0.5 MB less in all (PSS)."""
    pairs = [Wire.pair() for _ in slots]
    controls = [os.pipe() for _ in slots]  # (worker reads, supervisor writes)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    parent_pid = os.getpid()
    global _rehearsed
    if not _rehearsed:
        rehearse(config.max_result_bytes)
        _rehearsed = True
    for name in registry.names():  # read here once, shared, not allocated in each worker
        task = registry.get(name)
        if task is not None:
            parameters_problem(task.func, [], {})
    linux.release_free_memory()
    # Objects that exist now are never collected in the child: its GC would otherwise touch
    # (and so copy) every page it shares with the supervisor.
    gc.freeze()
    pids = []
    for index in range(len(slots)):
        pid = os.fork()
        if pid == 0:  # the worker
            _become_worker(config, registry, pairs, index, close_in_child, parent_pid,
                           (gates, slots[index][0]), controls)  # fmt: skip
        pids.append(pid)
    handles = []
    for (slot, group), pid, (parent_conn, child_conn), (control_r, control_w) in zip(
        slots, pids, pairs, controls, strict=True
    ):
        try:
            os.setpgid(pid, pid)  # also from this side: whichever runs first wins the race
        except OSError:
            pass
        child_conn.close()
        os.close(control_r)
        os.set_blocking(control_w, False)
        now = time.monotonic()
        name = f"{config.name}/w{slot}"
        log.debug("forked worker %s pid %d for queues %s", name, pid, group.label)
        handles.append(WorkerHandle(
            slot=slot, name=name, group=group, pid=pid, conn=parent_conn, started_mono=now,
            process_started_at=procinfo.start_time(pid), started_at=sql_timestamp(utcnow()),
            last_message_mono=now, max_jobs=config.max_jobs_per_worker, idle_since=now,
            control_fd=control_w))  # fmt: skip
    return handles


def _become_worker(
    config: SupervisorConfig,
    registry: TaskRegistry,
    pairs: list[tuple[Wire, Wire]],
    index: int,
    close_in_child: Callable[[], None],
    parent_pid: int,
    gate: tuple[StartGates | None, int] = (None, 0),
    controls: list[tuple[int, int]] = (),  # type: ignore[assignment]
) -> None:
    """In a freshly forked child: drop every end of the pipes but its own, then run the
    worker. Never returns."""
    try:
        os.setpgid(0, 0)
        for number, (parent_conn, child_conn) in enumerate(pairs):
            parent_conn.close()
            if number != index:
                child_conn.close()
        for number, (control_r, control_w) in enumerate(controls):
            os.close(control_w)
            if number != index:
                os.close(control_r)
        close_in_child()
        name_process(worker=f"{config.name}/w{gate[1]}")  # its JSON log records say so
        if config.otel:
            from jobtui.tracing import call_initialiser

            call_initialiser(config.otel)  # this worker's tracer provider and exporter
    except BaseException:  # noqa: BLE001 - the child must never return into the loop
        os._exit(3)
    worker_main(pairs[index][1], registry, heartbeat_interval_s=config.heartbeat_interval_s,
                max_result_bytes=config.max_result_bytes, parent_pid=parent_pid,
                gate=gate, max_log_bytes=config.max_log_bytes,
                control_fd=controls[index][0] if controls else None)  # fmt: skip
    os._exit(0)  # not reached: worker_main always exits
