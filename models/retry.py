"""The retry policy: pure functions, so the backoff can be tested without a clock."""

from __future__ import annotations

import random
from dataclasses import dataclass

DEFAULT_MAX_RETRIES = 3
DEFAULT_RETRY_DELAY_S = 10.0
DEFAULT_RETRY_BACKOFF = 2.0
DEFAULT_RETRY_MAX_DELAY_S = 3600.0
DEFAULT_RETRY_JITTER = True


@dataclass(frozen=True)
class RetryPolicy:
    delay_s: float = DEFAULT_RETRY_DELAY_S
    backoff: float = DEFAULT_RETRY_BACKOFF
    max_delay_s: float = DEFAULT_RETRY_MAX_DELAY_S
    jitter: bool = DEFAULT_RETRY_JITTER

    @classmethod
    def from_columns(
        cls,
        delay_s: float | None,
        backoff: float | None,
        max_delay_s: float | None,
        jitter: bool | int | None,
    ) -> RetryPolicy:
        """The policy of a job row: its own values where set, the defaults elsewhere."""
        return cls(
            delay_s=DEFAULT_RETRY_DELAY_S if delay_s is None else float(delay_s),
            backoff=DEFAULT_RETRY_BACKOFF if backoff is None else float(backoff),
            max_delay_s=DEFAULT_RETRY_MAX_DELAY_S if max_delay_s is None else float(max_delay_s),
            jitter=DEFAULT_RETRY_JITTER if jitter is None else bool(jitter),
        )

    def ceiling_s(self, retry_count: int) -> float:
        """The delay before the retry that makes ``retry_count`` become n+1 (no jitter)."""
        try:
            raw = self.delay_s * (self.backoff**retry_count)
        except OverflowError:
            raw = self.max_delay_s
        return max(0.0, min(self.max_delay_s, raw))

    def delay_for(self, retry_count: int, rng: random.Random | None = None) -> float:
        """The delay to wait: the ceiling, drawn uniformly from [ceiling/2, ceiling] with jitter."""
        ceiling = self.ceiling_s(retry_count)
        if not self.jitter or ceiling == 0:
            return ceiling
        return (rng or random).uniform(ceiling / 2, ceiling)
