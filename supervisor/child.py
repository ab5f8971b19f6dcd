"""The worker process: receive a job over the pipe, run it, report how it went.

A worker holds no database connection of its own (unless a task uses the jobtui API,
which then opens one lazily). It leads its own process group, ignores SIGINT (the
supervisor decides), dies with its supervisor (PR_SET_PDEATHSIG), and beats a heartbeat
from a small thread: a task stuck in C code holding the GIL stops the beat, and the
supervisor kills the worker as hung.

Jobs run in the order they were sent, so the supervisor knows a job started when the one
before it ended (no "start" message, one message fewer per job).

Messages to the supervisor: ("beat",), ("progress", id, attempt,
pct, msg, details_json), ("done", id, attempt, result_json, ran_s), ("error", id, attempt, type, message,
traceback, permanent, ran_s), ("skipped"|"cancelled", id, attempt) for a job not started,
("log", id, attempt, seq, lines_json, dropped_bytes, dropped_lines) for a chunk of a job's
output (capture.py; a job's last chunk comes just before its outcome), ("stack",
request_id, stack_json) answering a stack request read from the control pipe.
From it: ("run", [job, ...]), ("cancel", id), ("stop",). A job is (id, task, parameters,
attempt, queue[, seq[, trace_context]]): one with a ``seq`` (not 0) may be taken back
before it begins (gates.py); a ``trace_context`` is the enqueuer's (jobtui/tracing.py).

``ran_s`` is how long the task ran: the supervisor decides group commits on it, and its
own view would include however long its commit kept it from reading the pipe.
"""

from __future__ import annotations

import _thread
import os
import signal
import sys
import time
import traceback

from jobtui.execution import execute_job
from jobtui.registry import TaskRegistry

from . import linux
from .capture import DEFAULT_MAX_LOG_BYTES, JobOutput
from .wire import Wire

TYPE_CHECKING = False  # typing stays unimported at run time (module memory)
if TYPE_CHECKING:
    from .gates import StartGates

PROGRESS_MIN_INTERVAL_S = 0.1
#: Loaded in a worker only when a task module or ``--otel`` uses OpenTelemetry.
_OTEL = "opentelemetry.trace"
DEFAULT_LOG_LEVEL = 20  # logging.INFO: a task's records at INFO and above are kept


class ResultTooLarge(Exception):
    """The result is larger than --max-result-bytes."""


class _Channel:
    """The worker's end of the pipe, safe to send on from the heartbeat thread too."""

    def __init__(self, conn: Wire) -> None:
        self.conn = conn
        self.lock = _thread.allocate_lock()
        self.cancelled: set[str] = set()
        self.pending: list[tuple] = []  # "run"/"stop" read while polling for cancels
        #: The latest progress report the interval held back: the heartbeat thread sends
        #: it (a task that reports twice, then works for minutes, shows its second report)
        #: and so does the end of the run. Under ``lock``, so a newer report wins.
        self.held: tuple | None = None

    def send(self, message: tuple) -> None:
        with self.lock:
            self.conn.send(message)

    def send_outcome(self, outcome: tuple, output: JobOutput | None) -> None:
        """The outcome, after the job's last log chunk if it has one, in one write."""
        last = output.take_last() if output is not None else None
        with self.lock:
            if last is None:
                self.conn.send(outcome)
            else:
                self.conn.send_all([last, outcome])

    def send_progress(self, update: tuple, hold: bool) -> None:
        with self.lock:
            if hold:
                self.held = update
                return
            self.held = None
            self.conn.send(update)

    def send_held(self) -> None:
        with self.lock:
            if self.held is not None:
                update, self.held = self.held, None
                self.conn.send(update)

    def drain_controls(self) -> None:
        """Read what the supervisor sent while a job runs: cancels now, the rest later."""
        while self.conn.poll():
            message = self.conn.recv()
            if message[0] == "cancel":
                self.cancelled.add(message[1])
            else:
                self.pending.append(message)

    def recv(self) -> tuple:
        if self.pending:
            return self.pending.pop(0)
        return self.conn.recv()


def _beat(channel: _Channel, interval_s: float, stop: _thread.LockType) -> None:
    """Send a beat every ``interval_s`` until ``stop`` is released."""
    while not stop.acquire(timeout=interval_s):
        try:
            channel.send_held()
            channel.send(("beat",))
        except (OSError, EOFError):
            return


def run_job(
    channel: _Channel,
    registry: TaskRegistry,
    job: tuple,
    max_result_bytes: int,
    output: JobOutput | None = None,
) -> tuple:
    """Run one job; returns the outcome message (never raises for a task's failure).
    With ``output``, what the job writes is captured as its log, and its last chunk is
    sent before this returns (so before the outcome)."""
    job_id, attempt = job[0], job[3]
    last_progress = [0.0]

    def report(pct: float, message: str | None, details: str | None) -> None:
        now = time.monotonic()
        hold = pct < 100 and now - last_progress[0] < PROGRESS_MIN_INTERVAL_S
        if not hold:
            last_progress[0] = now
        channel.send_progress(("progress", job_id, attempt, pct, message, details), hold)

    def check_cancel() -> bool:
        channel.drain_controls()
        return job_id in channel.cancelled

    def execute() -> tuple:
        return execute_job(registry, job, report_progress=report, check_cancel=check_cancel,
                           max_result_bytes=max_result_bytes)  # fmt: skip

    if output is not None:
        task = registry.get(job[1])
        output.begin(job_id, attempt, getattr(task, "log_level", None) or DEFAULT_LOG_LEVEL)
    began = time.perf_counter()
    try:
        if _OTEL in sys.modules:  # a task module or --otel loaded OpenTelemetry
            from jobtui.tracing import run_in_consumer_span

            outcome = run_in_consumer_span(job, execute)
        else:
            outcome = execute()
    finally:
        channel.cancelled.discard(job_id)
        if output is not None:
            output.end()
    channel.send_held()  # the last word on progress is not lost to the interval
    return (*outcome, time.perf_counter() - began)  # how long it ran, as the worker saw it


REHEARSALS = 16  # CPython 3.11 specialises a function's bytecode after 8 calls


def _rehearsal_task() -> None:
    return None


def rehearse(max_result_bytes: int) -> None:
    """Run a worker's per-job path a few times in the supervisor, just before it forks.

    CPython 3.11 rewrites a function's bytecode in place while it warms up (its warm-up
    counter, then the specialised instructions). Done in each worker, that writes, and so
    copies, every page holding the code of the channel, the wire and ``execute_job``: once
    per worker. Done here once, the workers share the finished code. A private registry
    and a socket pair: no task of the user's runs, and nothing reaches the database.
    Measured with two idle workers after 200 jobs: 1.0 MB less in all (PSS)."""
    from jobtui.registry import Task, TaskRegistry

    registry = TaskRegistry()
    registry.register(Task(func=_rehearsal_task, name="jobtui.rehearsal"))
    supervisor_end, worker_end = Wire.pair()
    channel = _Channel(worker_end)
    job = ("rehearsal", "jobtui.rehearsal", "{}", 1, "default")
    try:
        for _ in range(REHEARSALS):
            supervisor_end.send_nowait(("run", [job]))
            message = channel.recv()
            channel.drain_controls()
            channel.send(run_job(channel, registry, message[1][0], max_result_bytes))
            supervisor_end.read_ready()
    finally:
        supervisor_end.close()
        worker_end.close()


def worker_main(
    conn: Wire,
    registry: TaskRegistry,
    *,
    heartbeat_interval_s: float,
    max_result_bytes: int,
    parent_pid: int,
    gate: tuple[StartGates | None, int] = (None, 0),
    max_log_bytes: int = DEFAULT_MAX_LOG_BYTES,
    control_fd: int | None = None,
) -> None:
    """The body of a forked worker; never returns (``os._exit``). ``gate``: the shared
    start gates and this worker's slot, through which the supervisor takes back a job
    handed in a batch that has not begun (gates.py). ``control_fd``: the pipe on which
    the supervisor asks for live stacks (capture.py answers)."""
    code = 0
    output = None
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        for sig in (signal.SIGTERM, signal.SIGCHLD, signal.SIGTSTP, signal.SIGCONT,
                    signal.SIGHUP, signal.SIGUSR1):  # fmt: skip
            signal.signal(sig, signal.SIG_DFL)
        signal.set_wakeup_fd(-1)
        linux.die_with_parent()
        if os.getppid() != parent_pid:  # the supervisor died before prctl took effect
            os._exit(1)
        me = os.getpid()
        gates, slot = gate
        channel = _Channel(conn)
        # A bare thread (the documented _thread module): threading's Thread, Event and
        # Condition machinery would write, and so copy, pages the worker shares with the
        # supervisor (measured: ~0.2 MB per worker). It never outlives the process.
        stop = _thread.allocate_lock()
        stop.acquire()
        beat = _thread.start_new_thread(_beat, (channel, heartbeat_interval_s, stop))
        output = JobOutput(channel, max_log_bytes, control_fd)
        output.thread_names[beat] = "jobtui heartbeat"
        _thread.start_new_thread(output.watch, ())
        while True:
            message = channel.recv()
            if message[0] == "stop":
                break
            if message[0] == "run":
                for job in message[1]:  # in order: the supervisor knows the first started
                    seq = job[5] if len(job) > 5 else 0
                    if seq and gates is not None and not gates.begin(slot, seq):
                        continue  # taken back: the supervisor gave it to a free worker
                    channel.drain_controls()
                    if any(m[0] == "stop" for m in channel.pending):
                        channel.send(("skipped", job[0], job[3]))  # shutting down: not started
                    elif job[0] in channel.cancelled:
                        channel.cancelled.discard(job[0])
                        channel.send(("cancelled", job[0], job[3]))
                    else:
                        outcome = run_job(channel, registry, job, max_result_bytes, output)
                        if os.getpid() != me:
                            os._exit(0)  # a process the task forked returned here: not a worker
                        channel.send_outcome(outcome, output)
            elif message[0] == "cancel":
                channel.cancelled.add(message[1])
        stop.release()
    except (EOFError, OSError, KeyboardInterrupt):
        code = 1  # the supervisor went away: nothing to report to
    except BaseException:  # noqa: BLE001 - last resort: say why before dying
        if output is not None:
            output.restore_terminal()
        traceback.print_exc()
        code = 2
    if _OTEL in sys.modules:  # spans a BatchSpanProcessor still holds leave before we do
        from jobtui.tracing import flush

        flush()
    os._exit(code)
