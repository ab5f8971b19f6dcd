"""Job statuses and the sets of them that queries and transitions share."""

from __future__ import annotations

from enum import IntEnum, StrEnum


class JobStatus(StrEnum):
    PENDING = "pending"  # ready, or due later via scheduled_for
    WAITING = "waiting"  # dependencies not yet met
    RUNNING = "running"
    RETRYING = "retrying"  # a failure waiting out its backoff until next_retry_at
    COMPLETED = "completed"
    FAILED = "failed"  # final: the dead-letter set
    CANCELLED = "cancelled"


class Priority(IntEnum):
    """The seed's priority levels; any int is accepted wherever a priority is."""

    LOW = -10
    NORMAL = 0
    HIGH = 10
    CRITICAL = 20


def parse_priority(text: str) -> int:
    """A priority typed by a person: an integer or a level's name (``high``, ``LOW``)."""
    value = text.strip()
    try:
        return int(value)
    except ValueError:
        pass
    try:
        return int(Priority[value.upper()])
    except KeyError:
        names = ", ".join(level.name.lower() for level in Priority)
        raise ValueError(f"priority {text!r}: an integer or one of {names}") from None


#: A claim takes jobs in these statuses (once due).
CLAIMABLE = ("pending", "retrying")
#: A job in one of these may still run: unique keys and dependencies look at them.
LIVE = ("pending", "waiting", "retrying", "running")
#: A job in one of these has ended.
FINAL = ("completed", "failed", "cancelled")
ALL_STATUSES = tuple(s.value for s in JobStatus)
