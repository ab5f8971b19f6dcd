"""Job ids: UUIDv7 strings, so that ordering by id is ordering by creation.

A time-ordered id gives the claim query its FIFO tie-break and the console its keyset
pagination without a second sequence column. Within one process ids are strictly
increasing (RFC 9562, method 1: a counter in the random bits); across processes two ids
from the same millisecond are ordered arbitrarily, which is fine for concurrent enqueues.
"""

from __future__ import annotations

import os
import threading
import time

_lock = threading.Lock()
_last_ms = 0
_counter = 0
#: Random bytes read ahead (one getrandom call per few hundred ids, not two per id);
#: dropped in a forked child, which must never reuse its parent's.
_RANDOM_CHUNK = 4096
_random = b""
_taken = 0


def new_job_id() -> str:
    """A new UUIDv7 as a 36-character string."""
    global _last_ms, _counter, _random, _taken
    with _lock:
        if _taken > len(_random) - 10:  # (empty at import and after a fork)
            _random, _taken = os.urandom(_RANDOM_CHUNK), 0
        rand = int.from_bytes(_random[_taken : _taken + 8], "big") & ((1 << 62) - 1)
        _taken += 8
        now_ms = time.time_ns() // 1_000_000
        if now_ms > _last_ms:
            _last_ms = now_ms
            seed = _random[_taken : _taken + 2]
            _taken += 2
            _counter = int.from_bytes(seed, "big") & 0x1FF  # leave room to count up
        else:
            _counter += 1
            if _counter > 0xFFF:  # counter exhausted: borrow the next millisecond
                _last_ms += 1
                _counter = 0
        ms, counter = _last_ms, _counter
    value = (ms & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76
    value |= counter << 64
    value |= 0b10 << 62
    value |= rand
    h = f"{value:032x}"  # str(uuid.UUID(int=value)), without building the object
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _reset_after_fork() -> None:
    global _lock, _random, _taken
    _lock = threading.Lock()
    _random, _taken = b"", 0


os.register_at_fork(after_in_child=_reset_after_fork)
