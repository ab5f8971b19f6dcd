"""The console's clock, injected so that tests and snapshots see a fixed time.

Render code never asks the system for the time: every snapshot carries the ``now`` it was
read at, and ages are computed from that.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time as a naive UTC datetime (as the database stores times)."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back (for caches and intervals)."""


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC).replace(tzinfo=None)

    def monotonic(self) -> float:
        return time.monotonic()


class FixedClock:
    """A clock that stands still unless a test moves it."""

    def __init__(self, at: datetime, monotonic: float = 1000.0) -> None:
        self.at = at
        self.mono = monotonic

    def now(self) -> datetime:
        return self.at

    def monotonic(self) -> float:
        return self.mono

    def advance(self, seconds: float) -> None:
        from datetime import timedelta

        self.at += timedelta(seconds=seconds)
        self.mono += seconds
