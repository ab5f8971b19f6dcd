"""Signals as flags: handlers only record what arrived; the loop decides what it means.

A wake-up pipe (``signal.set_wakeup_fd``) makes the loop's ``select`` return at once when
a signal arrives, so no signal waits for the next timer. Nothing else happens in a handler:
no logging, no I/O, no locks (they could deadlock against the interrupted code).
"""

from __future__ import annotations

import os
import signal
from collections import deque

HANDLED = (signal.SIGTERM, signal.SIGINT, signal.SIGCHLD, signal.SIGTSTP, signal.SIGCONT,
           signal.SIGHUP)  # fmt: skip


class SignalInbox:
    def __init__(self) -> None:
        self.received: deque[int] = deque()
        self.read_fd, self.write_fd = os.pipe()
        os.set_blocking(self.read_fd, False)
        os.set_blocking(self.write_fd, False)
        self._previous: dict[int, object] = {}

    def install(self) -> None:
        if self._previous:
            return  # installed already
        signal.set_wakeup_fd(self.write_fd, warn_on_full_buffer=False)
        for sig in HANDLED:
            self._previous[sig] = signal.signal(sig, self._record)

    def _record(self, signum: int, frame: object) -> None:
        self.received.append(signum)

    def drain_pipe(self) -> None:
        try:
            while os.read(self.read_fd, 4096):
                pass
        except BlockingIOError:
            pass

    def take(self) -> list[int]:
        taken = []
        while self.received:
            taken.append(self.received.popleft())
        return taken

    def uninstall(self) -> None:
        for sig, previous in self._previous.items():
            signal.signal(sig, previous)  # type: ignore[arg-type]
        signal.set_wakeup_fd(-1)

    def close_in_child(self) -> None:
        for fd in (self.read_fd, self.write_fd):
            try:
                os.close(fd)
            except OSError:
                pass
