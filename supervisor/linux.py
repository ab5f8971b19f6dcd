"""The Linux guarantees the supervisor leans on: subreaper, parent-death signal, identity.

Elsewhere these are no-ops and the supervisor says at start that it runs with fewer
guarantees (DESIGN.md: Linux first).
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import sys

log = logging.getLogger(__name__)

PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36
IS_LINUX = sys.platform.startswith("linux")

#: The C library's functions through the process's own symbols (dlopen(NULL)): no
#: ``ctypes.util.find_library``, which runs ldconfig and imports subprocess and tempfile
#: machinery into every process of the daemon.
_libc = ctypes.CDLL(None, use_errno=True) if IS_LINUX else None


def _prctl(option: int, value: int) -> bool:
    if _libc is None:
        return False
    if _libc.prctl(option, ctypes.c_ulong(value), 0, 0, 0) != 0:
        log.warning("prctl(%d) failed: %s", option, os.strerror(ctypes.get_errno()))
        return False
    return True


def become_subreaper() -> bool:
    """Adopt orphaned descendants (double-forked daemons of a job) so they can be swept."""
    return _prctl(PR_SET_CHILD_SUBREAPER, 1)


def die_with_parent() -> bool:
    """SIGKILL this process when the thread that forked it (the supervisor's main) exits."""
    return _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def release_free_memory() -> None:
    """Hand the C heap's free pages back to the kernel (glibc's malloc_trim) after start-up
    (imports, schema checks), before the workers fork: each worker shares fewer pages that
    it could later copy, and the daemon's resident size stays its working set."""
    import gc

    gc.collect()
    trim_free_memory()


def trim_free_memory() -> None:
    """glibc's malloc_trim: free pages anywhere in the C heap go back to the kernel (a
    no-op elsewhere)."""
    trim = getattr(_libc, "malloc_trim", None) if _libc is not None else None
    if trim is not None:
        trim(0)
