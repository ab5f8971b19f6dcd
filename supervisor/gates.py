"""Taking back jobs a worker holds but has not begun: one small shared page and a lock.

Only a deep prefetch (jobs far shorter than a commit, prefetch.py) hands a worker more than
the job it runs. If one of those jobs suddenly runs long, the jobs behind it in that
worker's pipe would wait for it while another worker idles. The supervisor cannot pull
bytes back out of a pipe, and the worker reads its pipe only between jobs, so the two
agree through shared memory instead: each job handed in a batch carries a sequence
number; before beginning one the worker records it as ``started`` unless it is at or
below ``cutoff``; to take jobs back the supervisor raises ``cutoff`` to the last number it
handed and reads ``started``: every job numbered above ``started`` will never begin there,
and goes to a free worker at once. Each side does its read-and-write under a POSIX record
lock on the worker's slot, so no job both begins and is taken back. The worker skips a
taken-back job without a word: the supervisor already moved it.

The supervisor never waits for the lock (a worker stopped while holding it would stop the
loop): if it is held, it tries again next turn. The memory (a memfd) and its mapping are
made before the workers fork, and inherited by them.
"""

from __future__ import annotations

import fcntl
import mmap
import os
import struct

SLOT = struct.Struct("qq")  # started, cutoff
MAX_SLOTS = 256  # workers whose jobs can be taken back (more: never handed a batch)


class StartGates:
    """The shared ``(started, cutoff)`` of every worker slot."""

    def __init__(self, slots: int = MAX_SLOTS) -> None:
        self.slots = slots
        self.fd = os.memfd_create("jobtui-start-gates")
        os.ftruncate(self.fd, SLOT.size * slots)
        self.map = mmap.mmap(self.fd, SLOT.size * slots)

    def covers(self, slot: int) -> bool:
        return 0 <= slot < self.slots

    def reset(self, slot: int) -> None:
        """Before a worker is forked into ``slot``: nothing begun, nothing taken back."""
        SLOT.pack_into(self.map, slot * SLOT.size, 0, 0)

    def begin(self, slot: int, seq: int) -> bool:
        """The worker, before beginning job ``seq``: True to run it (now recorded as
        begun); False if the supervisor took it back."""
        offset = slot * SLOT.size
        fcntl.lockf(self.fd, fcntl.LOCK_EX, SLOT.size, offset)
        try:
            started, cutoff = SLOT.unpack_from(self.map, offset)
            if seq <= cutoff:
                return False
            SLOT.pack_into(self.map, offset, seq, cutoff)
            return True
        finally:
            fcntl.lockf(self.fd, fcntl.LOCK_UN, SLOT.size, offset)

    def take_back(self, slot: int, last_seq: int) -> int | None:
        """The supervisor: no job numbered up to ``last_seq`` may begin in ``slot`` from now
        on unless it has begun already. Returns the last begun number (the jobs above it
        are the supervisor's again), or None when the lock is held (try later)."""
        offset = slot * SLOT.size
        try:
            fcntl.lockf(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB, SLOT.size, offset)
        except OSError:
            return None
        try:
            started, cutoff = SLOT.unpack_from(self.map, offset)
            SLOT.pack_into(self.map, offset, started, max(cutoff, last_seq))
            return started
        finally:
            fcntl.lockf(self.fd, fcntl.LOCK_UN, SLOT.size, offset)

    def close(self) -> None:
        self.map.close()
        os.close(self.fd)
