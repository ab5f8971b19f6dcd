"""The retry policy: pure functions, so the backoff can be tested without a clock."""

from __future__ import annotations

from dataclasses import dataclass

TYPE_CHECKING = False
if TYPE_CHECKING:
    import random

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
    #: How many failures a job may retry; None: the job row's own count decides (a policy
    #: used only for the backoff). A supervisor's resolved policy always sets it.
    max_retries: int | None = None

    @classmethod
    def from_columns(
        cls,
        delay_s: float | None,
        backoff: float | None,
        max_delay_s: float | None,
        jitter: bool | int | None,
        fallback: RetryPolicy | None = None,
    ) -> RetryPolicy:
        """The policy of a job row: its own values where set, ``fallback``'s (the task's, or
        the defaults) elsewhere."""
        base = fallback or DEFAULT_POLICY
        return cls(
            delay_s=base.delay_s if delay_s is None else float(delay_s),
            backoff=base.backoff if backoff is None else float(backoff),
            max_delay_s=base.max_delay_s if max_delay_s is None else float(max_delay_s),
            jitter=base.jitter if jitter is None else bool(jitter),
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
        if rng is None:
            import random as rng  # on the first jittered retry: not every process draws one
        return rng.uniform(ceiling / 2, ceiling)


DEFAULT_POLICY = RetryPolicy()
