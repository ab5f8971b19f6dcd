"""In the worker: capture what a job writes (stdout, stderr, ``logging``) and answer
requests for its live stack.

Capture is at the file-descriptor level: fds 1 and 2 of the worker are pipes for its
whole life, so ``print``, C extensions and child processes that inherit them are caught
alike. One bare thread (``watch``) reads both pipes, stamps each line with the time it
read it, and sends the lines of the current job in chunks over the worker's channel
(at most every ``FLUSH_INTERVAL_S``, sooner when a chunk grows large); the last chunk of
a job goes just before its outcome. ``logging`` records go straight into the chunk (a
handler on the root logger, at the task's ``log_level``, INFO by default).

Why the pipes stay for the worker's whole life rather than being restored between
jobs: a child process a job left behind keeps the descriptors it inherited, and would
write raw to the supervisor's terminal later. Output that arrives between jobs (or with
no job to own it) goes to the supervisor's stderr through ``visible_line`` instead.

Nothing here runs per job unless the job writes something: the job's start is two
assignments, its end a flush of Python's buffers and one ``poll(0)``.

While a job runs the thread reads the pipes every ``FLUSH_INTERVAL_S`` (each is 1 MB), so
a job writing faster than about 4 MB/s waits for it now and then; a job over
``--max-log-bytes`` is still read (its lines counted, not kept). A C extension that writes
while holding the GIL could fill a pipe and stall: the supervisor then kills the worker as
hung, as for any C call that holds the GIL.
"""

from __future__ import annotations

import _thread
import json
import logging
import os
import select
import sys
import time
import traceback

from jobtui.models.visible import visible_line

from .config import DEFAULT_MAX_LOG_BYTES  # noqa: F401 - the worker's default, re-exported

TYPE_CHECKING = False  # typing stays unimported at run time (module memory)
if TYPE_CHECKING:
    from .child import _Channel

FLUSH_INTERVAL_S = 0.25
#: Between jobs the watch thread still looks this often: a job that begins while it
#: waits is read on the timer within about this long.
IDLE_LOOK_S = 1.0
CHUNK_BYTES = 64 * 1024  # a chunk this large is sent at once
LINE_MAX_BYTES = 16 * 1024  # a longer line (or one never ended) is cut into pieces
PIPE_SIZE = 1 << 20
_F_SETPIPE_SZ = 1031

_STREAMS = {1: "out", 2: "err"}


class _JobLogHandler(logging.Handler):
    """Puts a record of the current job into its log (nothing between jobs)."""

    def __init__(self, capture: JobOutput) -> None:
        super().__init__(logging.NOTSET)
        self.capture = capture
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = self.format(record)
        except Exception:  # noqa: BLE001 - a bad format string must not fail the task
            text = f"{record.levelname} {record.name}: {record.msg!r} (unformattable)"
        self.capture.add_record(record.created, text)


class JobOutput:
    """The worker's captured descriptors, the current job's pending lines and its totals."""

    def __init__(self, channel: _Channel, max_bytes: int, control_fd: int | None) -> None:
        self.channel = channel
        self.max_bytes = max_bytes
        self.control_fd = control_fd
        self.lock = _thread.allocate_lock()
        self.job: tuple[str, int] | None = None
        self.lines: list[list] = []
        self.pending_bytes = 0
        self.seq = 0
        self.kept = 0
        self.dropped = 0
        self.dropped_lines = 0
        self.sent_dropped = 0
        self.sent_mono = 0.0
        self.partial: dict[int, bytes] = {1: b"", 2: b""}
        self.partial_since: dict[int, float] = {}
        self.level = logging.INFO
        self.stack_asked: list[int] = []
        self.last: tuple | None = None  # the ended job's last chunk, sent with its outcome
        self.main_ident = _thread.get_ident()  # made in the worker's main thread: it runs jobs
        self.thread_names: dict[int, str] = {}  # jobtui's bare threads, named for stacks
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError, AttributeError):
                pass
        try:
            self.terminal = os.dup(2)  # the supervisor's stderr: for output no job owns
        except OSError:
            self.terminal = -1  # started with fd 2 closed: such output goes nowhere
        self.read_fds: dict[int, int] = {}
        for target in (1, 2):
            read_fd, write_fd = os.pipe()
            try:
                import fcntl

                fcntl.fcntl(write_fd, _F_SETPIPE_SZ, PIPE_SIZE)
            except (ImportError, OSError):
                pass  # the default 64 kB: still read continuously
            os.dup2(write_fd, target)
            os.close(write_fd)
            os.set_blocking(read_fd, False)
            self.read_fds[read_fd] = target
        try:  # a print shows up in the log (and a tail) when its line ends
            sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
        except (AttributeError, ValueError):
            pass
        self.poller = select.poll()
        for fd in (*self.read_fds, *(() if control_fd is None else (control_fd,))):
            self.poller.register(fd, select.POLLIN)
        self.busy_poller = select.poll()  # while a job runs: stack requests only (watch)
        if control_fd is not None:
            self.busy_poller.register(control_fd, select.POLLIN)
        self.drain_poller = select.poll()
        for fd in self.read_fds:
            self.drain_poller.register(fd, select.POLLIN)
        root = logging.getLogger()
        self.handler = _JobLogHandler(self)
        root.handlers = [self.handler]  # the supervisor's own handler wrote raw to stderr
        self.root = root

    # -------------------------------------------------------------- per job

    def begin(self, job_id: str, attempt: int, level: int) -> None:
        """The job about to run owns what is written from now on."""
        if level != self.level or self.root.level != level:
            self.level = level
            self.root.setLevel(level)
        self.job = (job_id, attempt)

    def end(self) -> None:
        """The job has returned: take in what it wrote; its last chunk waits for the
        outcome (``take_last``), so both go in one write."""
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError, AttributeError):
                pass
        with self.lock:
            if self.drain_poller.poll(0):
                self._read_all()
            for fd in (1, 2):
                if self.partial[fd]:
                    self._line(fd, self.partial[fd], time.time())
                    self.partial[fd] = b""
            if self.lines or self.dropped != self.sent_dropped:
                self.last = self._chunk()
            self.job = None
            self.seq = self.kept = self.dropped = self.dropped_lines = self.sent_dropped = 0

    def add_record(self, created: float, text: str) -> None:
        """A ``logging`` record (from any thread of the job)."""
        with self.lock:
            if self.job is None:
                self._to_terminal(text)
                return
            if self.drain_poller.poll(0):
                self._read_all()  # what it printed before the record comes first
            self._keep(round(created, 3), "log", text)

    # -------------------------------------------------------------- the watch thread

    def watch(self) -> None:
        """The watch thread's body: read the pipes, send chunks, answer stack requests.

        While a job runs it reads the pipes on a timer (every ``FLUSH_INTERVAL_S``), not
        when they become readable: waking on every print made the thread take the GIL from
        the job for each line (measured: a job writing 10 lines ran at a third of the
        speed on a loaded machine). The job's end reads the rest itself. Between jobs it
        waits for output (a left-behind child's) and for stack requests."""
        while True:
            busy = self.job is not None
            poller = self.busy_poller if busy else self.poller
            timeout = FLUSH_INTERVAL_S * 1000 if busy or self.lines or self._partials() else (
                IDLE_LOOK_S * 1000)  # fmt: skip
            try:
                events = poller.poll(timeout)
            except InterruptedError:
                continue
            asked = False
            for fd, _ in events:
                if fd == self.control_fd:
                    asked = self._read_control() or asked
            with self.lock:
                if busy or events:
                    self._read_all()
                now_mono = time.monotonic()
                self._cut_stale_partials(now_mono)
                due = now_mono - self.sent_mono >= FLUSH_INTERVAL_S
                if (
                    self.job is not None
                    and self.lines
                    and (due or self.pending_bytes >= CHUNK_BYTES)
                ):
                    try:
                        self._send()
                    except (OSError, EOFError):
                        return
            if asked:
                try:
                    self._answer_stacks()
                except (OSError, EOFError):
                    return

    def _partials(self) -> bool:
        return bool(self.partial[1] or self.partial[2])

    def _read_all(self) -> None:
        """Read every pipe dry (under ``lock``), splitting lines."""
        now = time.time()
        for read_fd, target in self.read_fds.items():
            while True:
                try:
                    data = os.read(read_fd, 65536)
                except (BlockingIOError, InterruptedError):
                    break
                except OSError:
                    break
                if not data:
                    break
                self._take(target, data, now)

    def _take(self, target: int, data: bytes, now: float) -> None:
        buffer = self.partial[target] + data
        *complete, rest = buffer.split(b"\n")
        for raw in complete:
            self._line(target, raw, now)
        while len(rest) > LINE_MAX_BYTES:  # a line that never ends is cut, not held forever
            self._line(target, rest[:LINE_MAX_BYTES], now)
            rest = rest[LINE_MAX_BYTES:]
        if rest and not self.partial[target]:
            self.partial_since[target] = time.monotonic()
        self.partial[target] = rest

    def _cut_stale_partials(self, now_mono: float) -> None:
        """A job that prints without a newline (a progress bar of dots) is not held back:
        what it wrote shows after an interval."""
        for fd in (1, 2):
            if (
                self.partial[fd]
                and now_mono - self.partial_since.get(fd, now_mono) >= FLUSH_INTERVAL_S
            ):
                self._line(fd, self.partial[fd], time.time())
                self.partial[fd] = b""

    def _line(self, target: int, raw: bytes, now: float) -> None:
        text = raw.decode("utf-8", "backslashreplace")
        if text.endswith("\r"):
            text = text[:-1]
        if self.job is None:
            self._to_terminal(text)
        else:
            self._keep(round(now, 3), _STREAMS[target], text)

    def _keep(self, at: float, stream: str, text: str) -> None:
        size = len(text) + 1 if text.isascii() else len(text.encode("utf-8", "replace")) + 1
        if self.kept + size > self.max_bytes:
            self.dropped += size
            self.dropped_lines += 1
            return
        self.kept += size
        self.pending_bytes += size
        self.lines.append([at, stream, text])

    def take_last(self) -> tuple | None:
        """The ended job's last chunk, if any (sent with its outcome)."""
        last, self.last = self.last, None
        return last

    def _send(self) -> None:
        """Send the pending lines as the job's next chunk (under ``lock``)."""
        if self.job is not None:
            self.channel.send(self._chunk())
        else:
            self.lines = []

    def _chunk(self) -> tuple:
        """The pending lines as the job's next chunk message (under ``lock``)."""
        job = self.job
        assert job is not None
        lines, self.lines, self.pending_bytes = self.lines, [], 0
        message = ("log", job[0], job[1], self.seq, json.dumps(lines, ensure_ascii=False),
                   self.dropped, self.dropped_lines)  # fmt: skip
        self.seq += 1
        self.sent_dropped = self.dropped
        self.sent_mono = time.monotonic()
        return message

    def _to_terminal(self, text: str) -> None:
        """Output no job owns: to the supervisor's stderr, its control characters shown."""
        if self.terminal < 0:
            return
        try:
            os.write(self.terminal, f"worker pid {os.getpid()}: {visible_line(text)}\n".encode())
        except OSError:
            pass

    # -------------------------------------------------------------- live stacks

    def _read_control(self) -> bool:
        """Stack requests from the supervisor: request ids, one a line."""
        try:
            data = os.read(self.control_fd, 4096)  # type: ignore[arg-type]
        except (BlockingIOError, InterruptedError):
            return False
        except OSError:
            data = b""
        if not data:  # the supervisor closed it (it is exiting): stop watching it
            for poller in (self.poller, self.busy_poller):
                try:
                    poller.unregister(self.control_fd)
                except (KeyError, ValueError):
                    pass
            return bool(self.stack_asked)
        for word in data.split():
            try:
                self.stack_asked.append(int(word))
            except ValueError:
                continue
        return bool(self.stack_asked)

    def _answer_stacks(self) -> None:
        asked, self.stack_asked = self.stack_asked, []
        if not asked:
            return
        stack = json.dumps(current_stacks(self.job, self.main_ident, self.thread_names),
                           ensure_ascii=False)  # fmt: skip
        for request_id in asked:
            self.channel.send(("stack", request_id, stack))

    def restore_terminal(self) -> None:
        """Last resort before the worker dies: its own traceback goes to the terminal."""
        if self.terminal < 0:
            return
        try:
            os.dup2(self.terminal, 2)
        except OSError:
            pass


_EXECUTION_FILE = os.path.join("jobtui", "execution.py")


def current_stacks(job: tuple[str, int] | None, main_ident: int, names: dict[int, str]) -> dict:
    """Every thread's Python stack but the calling one's, innermost frame last; the
    worker's main thread (``main_ident``) is the one running the job."""
    me = _thread.get_ident()
    labels = dict(names)
    threading = sys.modules.get("threading")  # only if the task loaded it: not imported here
    if threading is not None:
        for thread in threading.enumerate():
            if thread.ident is not None and thread.ident not in labels:
                labels[thread.ident] = thread.name
    threads = []
    for ident, frame in sys._current_frames().items():
        if ident == me:
            continue
        frames = [{"file": f.filename, "line": f.lineno, "function": f.name, "code": f.line or ""}
                  for f in traceback.extract_stack(frame)]  # fmt: skip
        hidden = 0
        if ident == main_ident:  # the worker's own frames above the task say nothing new
            for index, f in enumerate(frames):
                if f["function"] == "call_task" and f["file"].endswith(_EXECUTION_FILE):
                    hidden = index + 1
            frames = frames[hidden:]
        name = "main" if ident == main_ident else labels.get(ident)
        threads.append({"ident": ident, "name": name, "frames": frames, "job": ident == main_ident,
                        "hidden_frames": hidden})  # fmt: skip
    threads.sort(key=lambda t: (not t["job"], t["ident"]))
    return {"job_id": job[0] if job else None, "attempt": job[1] if job else None,
            "pid": os.getpid(), "taken_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "threads": threads}  # fmt: skip
