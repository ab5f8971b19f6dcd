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
DEFAULT_MAX_LOG_BYTES = 1024 * 1024  # of one run's captured output (capture.py)
DEFAULT_POLL_INTERVAL_S = 1.0
DEFAULT_RETENTION_DAYS = 7.0
#: Runs that may kill their worker before the job is quarantined (--max-crashes).
DEFAULT_MAX_CRASHES = 2


@dataclass(frozen=True)
class WorkerGroup:
    """Workers that serve the same queues (None: every queue)."""

    queues: tuple[str, ...] | None
    size: int

    @property
    def label(self) -> str:
        return ",".join(self.queues) if self.queues else "*"


@dataclass(frozen=True)
class AlertRule:
    """``--alert-wait QUEUE=SECONDS`` or ``--alert-failure-rate QUEUE=PERCENT``: the queue
    is in alert while its measure is above ``threshold`` (``queue`` "*": every queue
    without a rule of its own)."""

    kind: str  # "wait" or "failure_rate" (models/alert.py)
    queue: str
    threshold: float


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
    max_log_bytes: int = DEFAULT_MAX_LOG_BYTES
    max_jobs_per_worker: int = 0  # 0: no limit
    max_memory_per_worker_mb: float = 0  # 0: no limit
    retention_days: float = DEFAULT_RETENTION_DAYS
    audit_retention_days: float = 90.0  # audit.DEFAULT_AUDIT_RETENTION_DAYS (0: keep all)
    poll_interval_s: float = DEFAULT_POLL_INTERVAL_S
    prefetch: int | None = None  # jobs queued per busy worker (None: adapt, prefetch.py)
    default_timeout_s: float = 0  # for jobs whose own and task's timeout are unset (0: none)
    #: For jobs whose own and task's max_retries / retry_delay are unset (None: built-in).
    default_max_retries: int | None = None
    default_retry_delay_s: float | None = None
    notify_hook: str | None = None  # module:function called with every notification
    #: module:function called in each worker right after its fork: sets up OpenTelemetry
    otel: str | None = None
    alerts: tuple[AlertRule, ...] = ()  # --alert-wait and --alert-failure-rate
    notify_webhook: str | None = None
    notify_email: tuple[str, ...] = ()
    notify_retries: bool = False  # each failed attempt that will be retried, too
    smtp_url: str | None = None
    smtp_from: str = "jobtui@localhost"
    #: For tasks that set no max_crashes (0: never quarantine).
    max_crashes: int = DEFAULT_MAX_CRASHES
    #: --autoscale QUEUE=MIN:MAX: the bounds of each autoscaled queue's workers.
    autoscale: tuple[tuple[str, int, int], ...] = ()
    #: how long a queue's next due job waits before its autoscaled workers grow
    autoscale_wait_s: float = 5.0
    #: how long an autoscaled worker stays idle before it is stopped
    autoscale_idle_s: float = 30.0
    #: the most workers in all while autoscaling (--workers with --autoscale; 0: no cap)
    max_workers: int = 0
    metrics_port: int | None = None  # serve Prometheus metrics here (metrics.py)
    metrics_buckets: tuple[float, ...] | None = None  # wait/run buckets (None: the default)
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


def parse_alert_options(values: list[str], kind: str) -> tuple[AlertRule, ...]:
    """``QUEUE=SECONDS`` (``wait``: more than 0) or ``QUEUE=PERCENT`` (``failure_rate``:
    0 to under 100); ``*`` for every queue without its own rule. ValueError says what is
    wrong, naming the option."""
    option = "--alert-wait" if kind == "wait" else "--alert-failure-rate"
    unit = "SECONDS" if kind == "wait" else "PERCENT"
    rules: dict[str, AlertRule] = {}
    for value in values:
        name, sep, number = value.partition("=")
        name = name.strip()
        if not name or not sep:
            raise ValueError(f"{option} takes QUEUE={unit} (or *={unit}), got {value!r}")
        try:
            threshold = float(number.strip().rstrip("%s") if kind == "wait" else
                              number.strip().rstrip("%"))  # fmt: skip
        except ValueError:
            raise ValueError(f"{option} {value!r}: {unit} must be a number") from None
        if kind == "wait" and not threshold > 0:
            raise ValueError(f"{option} {value!r}: SECONDS must be more than 0")
        if kind != "wait" and not 0 <= threshold < 100:
            raise ValueError(f"{option} {value!r}: PERCENT must be from 0 to under 100")
        if name in rules:
            raise ValueError(f"{option} names queue {name!r} twice")
        rules[name] = AlertRule(kind, name, threshold)
    return tuple(rules.values())


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


def parse_autoscale(values: list[str]) -> tuple[tuple[str, int, int], ...]:
    """``--autoscale QUEUE=MIN:MAX`` (repeatable): the queue's own workers, from MIN to MAX."""
    out: dict[str, tuple[str, int, int]] = {}
    for value in values:
        name, sep, bounds = value.partition("=")
        low_text, colon, high_text = bounds.partition(":")
        name = name.strip()
        try:
            low, high = int(low_text), int(high_text)
        except ValueError:
            low = high = -1
        if not name or not sep or not colon or low < 0 or high < max(1, low):
            raise ValueError(f"--autoscale {value!r}: QUEUE=MIN:MAX, whole numbers with "
                             "0 <= MIN <= MAX and MAX >= 1")  # fmt: skip
        if name in out:
            raise ValueError(f"--autoscale names queue {name!r} twice")
        out[name] = (name, low, high)
    return tuple(out.values())


def autoscaled_groups(
    queues: list[str], workers: int | None, autoscale: tuple[tuple[str, int, int], ...]
) -> tuple[tuple[WorkerGroup, ...], int]:
    """The worker groups when some queues autoscale, and the most workers in all.

    Horizon's balancing: with ``--autoscale``, ``--workers N`` is the ceiling on all of this
    supervisor's workers, not a shared pool; every queue has workers of its own — from
    ``--queue NAME=N`` (fixed; an autoscaled queue starts at N) or ``--autoscale`` (starting
    at MIN). Without ``--workers`` there is no ceiling but the MAXes."""
    fixed: dict[str, int] = {}
    for value in queues:
        name, sep, count = value.partition("=")
        if not sep:
            raise ValueError(f"--queue {value!r}: with --autoscale every queue has workers of "
                             "its own: --queue NAME=N, or --autoscale NAME=MIN:MAX")  # fmt: skip
    for group in parse_queue_options(queues, 0) if queues else ():
        fixed[group.label] = group.size
    groups = []
    for name, low, high in autoscale:
        start = fixed.pop(name, low)
        if not low <= start <= high:
            raise ValueError(f"--queue {name}={start} is outside --autoscale {name}={low}:{high}")
        groups.append(WorkerGroup(queues=(name,), size=start))
    groups += [WorkerGroup(queues=(name,), size=size) for name, size in fixed.items()]
    ceiling = workers or 0
    if workers is not None and workers < 1:
        raise ValueError("--workers must be at least 1 (the most workers in all) with --autoscale")
    floor = sum(g.size for g in groups)
    if ceiling and floor > ceiling:
        raise ValueError(f"--workers {ceiling} is below the {floor} workers the queues start "
                         "with (fixed counts and autoscale minimums)")  # fmt: skip
    if not floor and not any(high for _, _, high in autoscale):
        raise ValueError("no workers: give --queue NAME=N or --autoscale NAME=MIN:MAX")
    return tuple(groups), ceiling
