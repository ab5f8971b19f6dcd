"""SIGHUP: load new task code without taking the queue down.

A deploy replaces the task modules on disk; the supervisor and its workers still run the
code they imported. On SIGHUP the supervisor first imports the modules afresh in a child
process (the same interpreter, the same checks as a start): a deploy that does not import
is refused with its error in the log, and the old code goes on running — a bad deploy never
stops the queue. If it imports, the supervisor stops the way SIGTERM stops it (no new
claims, running jobs get ``--shutdown-grace``, the rest go back to ``pending`` with no
retry spent) and then executes itself again with its own command line: the same PID, so a
service manager keeps tracking it (systemd: ``ExecReload=/bin/kill -HUP $MAINPID``).

The check runs beside the loop, never blocking it; its exit is collected by the loop's
``waitpid`` (which reaps every child), hence the status is handed in, not waited for.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import time

TYPE_CHECKING = False  # typing stays unimported at run time (module memory)
if TYPE_CHECKING:
    from .loop import Supervisor

log = logging.getLogger(__name__)

#: A check still importing after this long is killed and the reload refused.
CHECK_TIMEOUT_S = 60.0
_MAX_ERROR_BYTES = 64 * 1024

_CHECK = """import sys
from jobtui.models.errors import ConfigurationError
from jobtui.supervisor.main import import_tasks
try:
    import_tasks(tuple(sys.argv[1:]))
except ConfigurationError as exc:
    print(exc, file=sys.stderr)
    sys.exit(1)
"""


class ImportCheck:
    """One child process importing the task modules as a start would."""

    def __init__(self, modules: tuple[str, ...]) -> None:
        import subprocess  # on SIGHUP only: the daemon does not keep it in memory otherwise

        self.proc = subprocess.Popen(
            [sys.executable, "-c", _CHECK, *modules], stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True,
        )  # fmt: skip
        assert self.proc.stderr is not None
        os.set_blocking(self.proc.stderr.fileno(), False)
        self.deadline_mono = time.monotonic() + CHECK_TIMEOUT_S
        self.timed_out = False
        self._error = b""

    @property
    def pid(self) -> int:
        return self.proc.pid

    def read_error(self) -> None:
        """Keep the child's error output (a pipe that filled up would stall the child)."""
        stream = self.proc.stderr
        if stream is None:
            return
        with contextlib.suppress(BlockingIOError, OSError, ValueError):
            while chunk := stream.read(65536):
                self._error = (self._error + chunk)[-_MAX_ERROR_BYTES:]

    def kill_if_overdue(self, now_mono: float) -> None:
        if not self.timed_out and now_mono >= self.deadline_mono:
            self.timed_out = True
            with contextlib.suppress(OSError):
                os.killpg(self.proc.pid, signal.SIGKILL)

    def verdict(self, status: int) -> str | None:
        """None when the new code imports, else why not (one line), from the wait status
        the loop collected."""
        self.read_error()
        if self.proc.stderr is not None:
            self.proc.stderr.close()
        self.proc.returncode = os.waitstatus_to_exitcode(status)  # Popen must not wait
        if self.timed_out:
            return f"importing the task modules took over {CHECK_TIMEOUT_S:g} s"
        if status == 0:
            return None
        lines = [line for line in self._error.decode("utf-8", "replace").splitlines() if line]
        if os.WIFSIGNALED(status):
            return f"the import check was killed by signal {os.WTERMSIG(status)}"
        return lines[-1] if lines else f"the import check exited with code {self.proc.returncode}"

    def abandon(self) -> None:
        """Stopping for good while the check runs: it has nothing left to say."""
        with contextlib.suppress(OSError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        if self.proc.stderr is not None:
            self.proc.stderr.close()
        self.proc.returncode = -signal.SIGKILL  # reaped by the loop's waitpid, not Popen's


class Reloading:
    """The supervisor's side of SIGHUP (a mixin of ``loop.Supervisor``)."""

    import_check: ImportCheck | None = None
    reload_requested = False  # the new code imports: start again once stopped

    def request_reload(self: Supervisor) -> None:
        if self.stopping or self.reload_requested:
            return
        if self.import_check is not None:
            log.info("SIGHUP: a reload is being checked already")
            return
        try:
            self.import_check = ImportCheck(self.config.imports)
        except OSError as exc:
            log.error("reload refused, still running the old code: cannot check it: %s", exc)
            return
        log.info("SIGHUP: checking that the task modules import before reloading (pid %d)",
                 self.import_check.pid)  # fmt: skip

    def reload_check_tick(self: Supervisor, now_mono: float) -> None:
        check = self.import_check
        if check is not None:
            check.read_error()
            check.kill_if_overdue(now_mono)

    def reload_check_reaped(self: Supervisor, pid: int, status: int) -> bool:
        """Whether ``pid`` was the import check (and its verdict acted on)."""
        check = self.import_check
        if check is None or pid != check.pid:
            return False
        self.import_check = None
        why = check.verdict(status)
        if why is not None:
            log.error("reload refused, still running the old code: %s", why)
        elif not self.stopping:
            log.info("SIGHUP: the new code imports; finishing running jobs, then reloading")
            self.reload_requested = True
            self.begin_shutdown()
        return True

    def abandon_reload_check(self: Supervisor) -> None:
        if self.import_check is not None:
            self.import_check.abandon()
            self.import_check = None


def execute_again() -> None:
    """Replace this process with a fresh start of the same command line (never returns
    unless the exec itself fails, which raises OSError)."""
    log.info("reloading: starting again as %s", " ".join(sys.orig_argv))
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os.execv(sys.executable, sys.orig_argv)
