"""The supervisor's settings, parsed once from the command line."""

from __future__ import annotations

import socket
from dataclasses import dataclass, field

DEFAULT_WORKERS = 2
DEFAULT_HEARTBEAT_INTERVAL_S = 5.0
DEFAULT_LEASE_S = 30.0
DEFAULT_KILL_GRACE_S = 5.0
DEFAULT_SHUTDOWN_GRACE_S = 30.0
DEFAULT_MAX_RESULT_BYTES = 1024 * 1024
DEFAULT_POLL_INTERVAL_S = 1.0
DEFAULT_RETENTION_DAYS = 7.0


@dataclass(frozen=True)
class WorkerGroup:
    """Workers that serve the same queues (None: every queue)."""

    queues: tuple[str, ...] | None
    size: int

    @property
    def label(self) -> str:
        return ",".join(self.queues) if self.queues else "*"


@dataclass(frozen=True)
class SupervisorConfig:
    imports: tuple[str, ...]
    groups: tuple[WorkerGroup, ...]
    name: str
    database_url: str | None = None
    host: str = field(default_factory=socket.gethostname)
    heartbeat_interval_s: float = DEFAULT_HEARTBEAT_INTERVAL_S
    lease_s: float = DEFAULT_LEASE_S
    kill_grace_s: float = DEFAULT_KILL_GRACE_S
    shutdown_grace_s: float = DEFAULT_SHUTDOWN_GRACE_S
    max_result_bytes: int = DEFAULT_MAX_RESULT_BYTES
    max_jobs_per_worker: int = 0  # 0: no limit
    max_memory_per_worker_mb: float = 0  # 0: no limit
    retention_days: float = DEFAULT_RETENTION_DAYS
    poll_interval_s: float = DEFAULT_POLL_INTERVAL_S
    prefetch: int | None = None  # jobs queued per busy worker (None: adapt, prefetch.py)
    default_timeout_s: float = 0  # for jobs whose own and task's timeout are unset (0: none)
    #: For jobs whose own and task's max_retries / retry_delay are unset (None: built-in).
    default_max_retries: int | None = None
    default_retry_delay_s: float | None = None
    notify_hook: str | None = None  # module:function called with every notification
    notify_webhook: str | None = None
    notify_email: tuple[str, ...] = ()
    notify_retries: bool = False  # each failed attempt that will be retried, too
    smtp_url: str | None = None
    smtp_from: str = "jobtui@localhost"
    #: Seconds a job waits before each priority step, in the queues served (None: off).
    priority_aging_s: float | None = None

    @property
    def served_queues(self) -> tuple[str, ...] | None:
        """The queues some worker of this supervisor serves (None: every queue)."""
        names: list[str] = []
        for group in self.groups:
            if group.queues is None:
                return None
            names += [q for q in group.queues if q not in names]
        return tuple(names)

    @property
    def hang_timeout_s(self) -> float:
        """A worker silent this long (no heartbeat, no message) is killed as hung."""
        return max(self.lease_s, 3 * self.heartbeat_interval_s)

    @property
    def total_workers(self) -> int:
        return sum(group.size for group in self.groups)


def parse_queue_options(values: list[str], workers: int | None) -> tuple[WorkerGroup, ...]:
    """``--queue NAME=N`` gives N workers to NAME alone; a bare ``--queue NAME`` adds NAME to
    the queues the shared workers (``--workers``) serve. Without any bare ``--queue`` the
    shared workers serve every queue. ``--workers`` defaults to 2, or to 0 when every
    ``--queue`` has its own count."""
    dedicated: list[WorkerGroup] = []
    shared: list[str] = []
    for value in values:
        name, sep, count = value.partition("=")
        name = name.strip()
        if not name:
            raise ValueError(f"--queue needs a queue name, got {value!r}")
        if sep:
            try:
                size = int(count)
            except ValueError:
                raise ValueError(f"--queue {value!r}: N must be an integer") from None
            if size < 1:
                raise ValueError(f"--queue {value!r}: N must be at least 1")
            dedicated.append(WorkerGroup(queues=(name,), size=size))
        else:
            shared.append(name)
    if workers is None:
        workers = DEFAULT_WORKERS if (shared or not dedicated) else 0
    if workers < 0:
        raise ValueError("--workers must be at least 0")
    groups = list(dedicated)
    if workers:
        groups.append(WorkerGroup(queues=tuple(shared) or None, size=workers))
    if not groups:
        raise ValueError("no workers: give --workers N or --queue NAME=N")
    return tuple(groups)
