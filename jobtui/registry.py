"""Tasks: functions registered with ``@task``, and the registry the supervisor runs from.

Only a registered task can run: a job row names a task, never an import path that would
be imported blindly (DESIGN.md, supervisor rules).

A ``Task`` is generic over its function's parameters and return type (``Task[P, R]``), so
a type checker checks ``send_email(...)`` and ``send_email.enqueue(...)`` against the
function's own signature. Only the type checker sees ``typing``: the supervisor imports
this module, and ``typing`` stays out of its memory (tests/unit/test_pure.py), so at run
time ``Generic`` and ``overload`` are small stand-ins.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from jobtui.models.catalog import ALL_UNSET, unset_mask
from jobtui.models.enqueueing import OPTION_NAMES
from jobtui.models.retry import RetryPolicy

TYPE_CHECKING = False  # typing stays unimported at run time (module memory)
if TYPE_CHECKING:
    from typing import Any, Generic, ParamSpec, TypeVar, overload

    from jobtui.models.job import Job

    P = ParamSpec("P")
    R = TypeVar("R")
else:
    P = R = None  # only subscripted below, by the stand-in

    class Generic:
        """Run-time stand-in for ``typing.Generic``: ``Task[P, R]`` is ``Task`` itself."""

        def __class_getitem__(cls, params: object) -> type:
            return cls

    def overload(func: Callable[..., object]) -> Callable[..., object]:
        """Run-time stand-in for ``typing.overload``: the last definition is the one."""
        return func


#: Options ``@task`` accepts as defaults for the jobs of that task.
TASK_DEFAULTS = frozenset({
    "queue", "priority", "max_retries", "retry_delay", "retry_backoff", "retry_max_delay",
    "retry_jitter", "timeout", "tags", "fair_key",
})  # fmt: skip


@dataclass
class Task(Generic[P, R]):
    """A registered task: the function, its name and the defaults of its jobs."""

    func: Callable[P, R]
    name: str
    defaults: dict[str, Any] = field(default_factory=dict)
    cron: str | None = None
    should_enqueue: Callable[..., bool] | None = None
    on_failure: Callable[..., Any] | None = None
    #: Exception types that fail the job at once (besides PermanentError).
    permanent_errors: tuple[type[BaseException], ...] = ()
    #: When set, only these exception types are retried; any other fails at once.
    retry_errors: tuple[type[BaseException], ...] | None = None
    #: What recovery does with a run whose worker or supervisor died: "retry" (at least
    #: once) or "fail" (for work that must not repeat).
    orphan_policy: str = "retry"
    #: Runs that may kill their worker (a signal, an OOM kill, an exit mid-job, a hang
    #: past the lease) before the job is quarantined: failed at once, retries or not.
    #: None: the supervisor's ``--max-crashes`` (default 2); 0: never quarantined.
    max_crashes: int | None = None
    #: The lowest ``logging`` level a job of this task keeps in its log (None: INFO).
    log_level: int | None = None
    #: At most so many starts per period across the fleet ("100/m"; rates.py).
    rate_limit: str | None = None
    #: At most so many running jobs per concurrency_key across the fleet (key_limits.py).
    key_concurrency: int | None = None
    #: Where the function takes ``progress_callback`` (see _progress_callback_position).
    progress_callback_position: int | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        functools.update_wrapper(self, self.func)  # type: ignore[arg-type]
        self.progress_callback_position = _progress_callback_position(self.func)

    def takes_progress_callback(self, positional_args: int) -> bool:
        """Whether a run with this many positional arguments is to be given a
        ``progress_callback`` keyword (seed 002): the function declares one, and the
        arguments do not already fill its place."""
        position = self.progress_callback_position
        if position is None:
            return False
        return position == KEYWORD_ONLY or positional_args <= position

    @property
    def is_async(self) -> bool:
        return inspect.iscoroutinefunction(self.func)

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        """Call the function directly, in this process (no job)."""
        return self.func(*args, **kwargs)

    def enqueue(self, *args: P.args, **kwargs: P.kwargs) -> Job | None:
        """Enqueue a job of this task with these arguments (task arguments only; use
        ``jobtui.enqueue(task, args=..., priority=...)`` to set job options). None when
        the task's ``should_enqueue`` declined."""
        from jobtui.api import enqueue

        return enqueue(self, args=list(args), kwargs=kwargs)

    async def aenqueue(self, *args: P.args, **kwargs: P.kwargs) -> Job | None:
        """``enqueue`` for coroutines: runs on a jobtui thread, never blocking the loop."""
        from jobtui import aio  # loaded on first use: ``import jobtui`` stays asyncio-free

        return await aio.enqueue(self, args=list(args), kwargs=kwargs)

    @property
    def retry_policy(self) -> RetryPolicy:
        """The task's retry policy (its options over the defaults of DESIGN.md)."""
        d = self.defaults
        return RetryPolicy.from_columns(
            d.get("retry_delay"),
            d.get("retry_backoff"),
            d.get("retry_max_delay"),
            d.get("retry_jitter"),
        )

    @property
    def registered_defaults(self) -> dict[str, Any]:
        """The defaults supervisors publish for enqueuers that cannot import the task (and
        the task catalog shows): the job options, and ``max_crashes`` and ``log_level`` when set."""
        out = dict(self.defaults)
        if self.max_crashes is not None:
            out["max_crashes"] = self.max_crashes
        if self.log_level is not None:
            out["log_level"] = level_name(self.log_level)
        return out

    @property
    def timeout(self) -> float | None:
        return self.defaults.get("timeout")

    def is_permanent(self, exc: BaseException) -> bool:
        """Whether ``exc`` must fail the job without a retry."""
        from jobtui.models.errors import PermanentError

        if isinstance(exc, (PermanentError, *self.permanent_errors)):
            return True
        return self.retry_errors is not None and not isinstance(exc, self.retry_errors)


#: ``progress_callback`` is keyword-only (or the function takes it only by keyword).
KEYWORD_ONLY = -1


def _progress_callback_position(func: Callable[..., Any]) -> int | None:
    """Where ``func`` takes a ``progress_callback`` parameter: its positional index,
    KEYWORD_ONLY, or None when it declares none. Read once, when the task registers (the
    signature follows ``functools.wraps`` to the function itself)."""
    try:
        parameters = list(inspect.signature(func).parameters.values())
    except (TypeError, ValueError):
        return None
    for index, parameter in enumerate(parameters):
        if parameter.name != "progress_callback":
            continue
        if parameter.kind is inspect.Parameter.KEYWORD_ONLY:
            return KEYWORD_ONLY
        if parameter.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD:
            return index
    return None


class TaskRegistry:
    """Name → Task. One per process (``registry``); tests may make their own."""

    def __init__(self) -> None:
        self._tasks: dict[str, Task] = {}

    def register(self, task: Task) -> Task:
        existing = self._tasks.get(task.name)
        if existing is not None and existing.func is not task.func:
            same_place = (
                existing.func.__module__ == task.func.__module__
                and existing.func.__qualname__ == task.func.__qualname__
            )
            if not same_place:  # a module imported twice (as __main__ and by name) is fine
                raise ValueError(f"two tasks are named {task.name!r}")
        self._tasks[task.name] = task
        return task

    def get(self, name: str) -> Task | None:
        return self._tasks.get(name)

    def names(self) -> list[str]:
        return sorted(self._tasks)

    def __contains__(self, name: object) -> bool:
        return name in self._tasks

    def __len__(self) -> int:
        return len(self._tasks)


registry = TaskRegistry()


@overload
def task(func: Callable[P, R], /) -> Task[P, R]: ...


@overload
def task(  # noqa: F811 - an overload (ruff does not know the run-time stand-in)
    func: None = None,
    *,
    name: str | None = None,
    cron: str | None = None,
    should_enqueue: Callable[..., bool] | None = None,
    on_failure: Callable[..., Any] | None = None,
    permanent_errors: tuple[type[BaseException], ...] = (),
    retry_errors: tuple[type[BaseException], ...] | None = None,
    orphan_policy: str = "retry",
    max_crashes: int | None = None,
    log_level: int | str | None = None,
    rate_limit: str | None = None,
    key_concurrency: int | None = None,
    **defaults: Any,
) -> Callable[[Callable[P, R]], Task[P, R]]: ...


def task(  # noqa: F811 - the implementation of the overloads above
    func: Callable[..., Any] | None = None,
    *,
    name: str | None = None,
    cron: str | None = None,
    should_enqueue: Callable[..., bool] | None = None,
    on_failure: Callable[..., Any] | None = None,
    permanent_errors: tuple[type[BaseException], ...] = (),
    retry_errors: tuple[type[BaseException], ...] | None = None,
    orphan_policy: str = "retry",
    max_crashes: int | None = None,
    log_level: int | str | None = None,
    rate_limit: str | None = None,
    key_concurrency: int | None = None,
    **defaults: Any,
) -> Any:
    """Register a function as a task; ``@task`` and ``@task(queue="emails", ...)`` both work.

    The name is ``name=`` or ``module.function``. Keyword options (queue, priority,
    max_retries, retry_delay, retry_backoff, retry_max_delay, retry_jitter, timeout, tags)
    are defaults each ``enqueue`` may override. ``max_crashes``: runs that may kill their
    worker before the job is quarantined (None: the supervisor's ``--max-crashes``).
    ``log_level`` ("DEBUG", ..., or a
    number): the lowest ``logging`` level its jobs keep in their logs (default INFO).
    ``rate_limit="100/m"``: at most so many
    of its jobs start per period across the fleet; ``key_concurrency=2``: at most so many
    of its jobs run at once per ``concurrency_key`` (both hold from a supervisor's start
    that imports the task; ``jobtui rate`` / ``jobtui limit`` override them).
    """
    unknown = set(defaults) - TASK_DEFAULTS
    if unknown:
        raise TypeError(f"unknown task option(s): {', '.join(sorted(unknown))}")
    if not (defaults.get("fair_key") is None or isinstance(defaults["fair_key"], str)
            or callable(defaults["fair_key"])):  # fmt: skip
        raise TypeError("fair_key must be a string or a function of the job's arguments")
    if orphan_policy not in ("retry", "fail"):
        raise TypeError(f"orphan_policy must be 'retry' or 'fail', got {orphan_policy!r}")
    if max_crashes is not None and (
        isinstance(max_crashes, bool) or not isinstance(max_crashes, int) or max_crashes < 0
    ):
        raise TypeError(f"max_crashes must be a whole number >= 0, got {max_crashes!r}")
    if rate_limit is not None:
        from jobtui.models.rates import parse_rate

        try:
            parse_rate(rate_limit)
        except ValueError as exc:
            raise TypeError(str(exc)) from None
    if key_concurrency is not None and (
        not isinstance(key_concurrency, int) or isinstance(key_concurrency, bool)
        or key_concurrency < 1
    ):  # fmt: skip
        raise TypeError(f"key_concurrency must be a whole number >= 1, got {key_concurrency!r}")
    assert TASK_DEFAULTS <= OPTION_NAMES
    level = _log_level(log_level)

    def wrap(fn: Callable[P, R]) -> Task[P, R]:
        task_name = name or f"{fn.__module__}.{fn.__qualname__}"
        return registry.register(Task(
            func=fn, name=task_name, defaults=dict(defaults), cron=cron,
            should_enqueue=should_enqueue, on_failure=on_failure,
            permanent_errors=tuple(permanent_errors),
            retry_errors=None if retry_errors is None else tuple(retry_errors),
            orphan_policy=orphan_policy, max_crashes=max_crashes, log_level=level,
            rate_limit=rate_limit, key_concurrency=key_concurrency,
        ))  # fmt: skip

    return wrap(func) if func is not None else wrap


_LEVELS = {"DEBUG": 10, "INFO": 20, "WARNING": 30, "ERROR": 40, "CRITICAL": 50}


def _log_level(value: int | str | None) -> int | None:
    """``log_level=`` as a number (a level's name or a number, as ``logging`` takes)."""
    if value is None:
        return None
    if isinstance(value, str) and value.strip().upper() in _LEVELS:
        return _LEVELS[value.strip().upper()]
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 50:
        return value
    raise TypeError(f"log_level must be one of {', '.join(_LEVELS)} or 0-50, got {value!r}")


def level_name(level: int) -> str:
    """A number as the level's name where it has one ("INFO"), else the number."""
    for name, number in _LEVELS.items():
        if number == level:
            return name
    return str(level)


def resolve_fair_key(options: dict[str, Any], args: list[Any], kwargs: dict[str, Any]) -> None:
    """A task's ``fair_key`` may be a function of the job's arguments (``@task(fair_key=
    lambda customer, **_: customer)``): call it, so the job stores its tenant's key."""
    key = options.get("fair_key")
    if callable(key):
        value = key(*args, **kwargs)
        options["fair_key"] = None if value is None else str(value)


def task_options(
    target: Task | str, options: Mapping[str, Any], database: Any = None
) -> tuple[str, dict[str, Any]]:
    """The task name and the job options: the task's defaults, overridden by ``options``,
    with ``unset_options`` marking what the caller left out (a supervisor applies its own
    registry's defaults to those: catalog.py).

    A task this process has not imported (enqueued by name, from the CLI or another
    service) takes the defaults its supervisors published to the task catalog, applied
    where every enqueue writes (``insert_jobs``).
    """
    if not options:  # the common call: every option left to the task
        if isinstance(target, Task):
            return target.name, {**target.defaults, "unset_options": ALL_UNSET}
        known = registry.get(target) if isinstance(target, str) else None
        if known is not None:
            return known.name, {**known.defaults, "unset_options": ALL_UNSET}
        if isinstance(target, str) and target:
            return target, {"unset_options": ALL_UNSET}
        return target, {}  # type: ignore[return-value]
    given = {k: v for k, v in options.items() if v is not None}
    if isinstance(target, Task):
        known: Task | None = target
    else:
        known = registry.get(target) if isinstance(target, str) else None
    if known is not None:
        return known.name, {**known.defaults, **given, "unset_options": unset_mask(given)}
    if isinstance(target, str) and target:
        return target, {**given, "unset_options": unset_mask(given)}
    return target, dict(options)  # type: ignore[return-value]
