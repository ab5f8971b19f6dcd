"""Running one job's task and describing how it went: shared by workers and eager mode.

The result is one message tuple — ``("done", id, attempt, result_json)`` or
``("error", id, attempt, error_type, message, traceback, permanent)`` — so the worker can
send it over its pipe as it is, and eager mode can turn it into the same outcome a
supervisor would write. A task's failure is data here, never an exception.
"""

from __future__ import annotations

import json
import traceback
from collections.abc import Callable

from jobtui.context import JobContext, ProgressCallback, bind_job, unbind_job
from jobtui.models.base import dumps
from jobtui.models.outcomes import Outcome
from jobtui.registry import TaskRegistry

TYPE_CHECKING = False  # typing stays unimported at run time (module memory)
if TYPE_CHECKING:
    from typing import Any

DEFAULT_MAX_RESULT_BYTES = 1024 * 1024
#: What a failure keeps of its message and traceback: an exception carrying megabytes of
#: text (a response body, a repr) must not fill the job row, the pipe or the console.
ERROR_MESSAGE_MAX = 10_000
TRACEBACK_MAX = 64_000


def _clip_start(text: str, limit: int) -> str:
    return text if len(text) <= limit else f"{text[:limit]}… [{len(text) - limit:,} characters cut]"


def _clip_middle(text: str, limit: int) -> str:
    """Keep the start and, mostly, the end of a traceback: the innermost frames and the
    exception line are at the end."""
    if len(text) <= limit:
        return text
    head = limit // 4
    cut = len(text) - limit
    return f"{text[:head]}\n… [{cut:,} characters cut] …\n{text[len(text) - (limit - head) :]}"


_CO_COROUTINE = 0x80  # inspect.CO_COROUTINE, without importing inspect


def call_task(func: Callable[..., Any], args: list, kwargs: dict) -> Any:
    """Call a task function; ``async def`` tasks (and returned awaitables) run to the end.

    asyncio and inspect load only for async tasks: a worker of sync tasks stays small.
    """
    if getattr(getattr(func, "__code__", None), "co_flags", 0) & _CO_COROUTINE:
        import asyncio

        return asyncio.run(func(*args, **kwargs))
    value = func(*args, **kwargs)
    if hasattr(value, "__await__"):
        import asyncio

        async def _await() -> Any:
            return await value

        return asyncio.run(_await())
    return value


#: Each task's signature, read once (None: it has none to check).
_signatures: dict[Callable[..., Any], Any] = {}
#: Whether arguments fit depends only on how many are positional and which keywords are
#: named, never on their values: each shape is bound once (a few µs), then looked up.
_shapes: dict[tuple, str | None] = {}
_SHAPES_MAX = 4096


def parameters_problem(func: Callable[..., Any], args: list, kwargs: dict) -> str | None:
    """Why ``args``/``kwargs`` cannot be passed to ``func`` (a missing or an unexpected
    argument), or None when they fit. Checked before the call, so such a job fails for
    good at once (README's fault table: bad parameters are not retried), while a
    TypeError raised inside the task stays an ordinary, retried error."""
    shape = (func, len(args), *kwargs) if len(kwargs) < 2 else (func, len(args), *sorted(kwargs))
    try:
        return _shapes[shape]
    except KeyError:
        pass
    except TypeError:  # an unhashable callable: checked without the caches
        return _bind_problem(_read_signature(func), args, kwargs)
    try:
        signature = _signatures[func]
    except KeyError:
        signature = _signatures[func] = _read_signature(func)
    problem = _bind_problem(signature, args, kwargs)
    if len(_shapes) >= _SHAPES_MAX:
        _shapes.clear()
    _shapes[shape] = problem
    return problem


def _read_signature(func: Callable[..., Any]) -> Any:
    import inspect  # already loaded by dataclasses: costs no module

    try:
        return inspect.signature(func)
    except (TypeError, ValueError):  # a builtin or callable without one: not checked
        return None


def _bind_problem(signature: Any, args: list, kwargs: dict) -> str | None:
    problem = None
    if signature is not None:
        try:
            signature.bind(*args, **kwargs)
        except TypeError as exc:
            problem = str(exc)
    return problem


def execute_job(
    registry: TaskRegistry,
    job: tuple,
    *,
    report_progress: Callable[[float, str | None, str | None], None],
    check_cancel: Callable[[], bool],
    max_result_bytes: int = DEFAULT_MAX_RESULT_BYTES,
) -> tuple:
    """Run ``job`` = (id, job_type, parameters_json, attempt, queue_name) to its outcome."""
    job_id, job_type, parameters_json, attempt = job[0], job[1], job[2], job[3]
    queue_name = job[4] if len(job) > 4 else "default"
    task = registry.get(job_type)
    if task is None:
        return ("error", job_id, attempt, "TaskNotFound", f"unknown task {job_type}", None, True)
    try:
        parameters = json.loads(parameters_json or "{}")
        args, kwargs = list(parameters.get("args") or []), dict(parameters.get("kwargs") or {})
    except (ValueError, TypeError, AttributeError) as exc:
        return ("error", job_id, attempt, "InvalidParameters",
                f"corrupt parameters: {exc}", None, True)  # fmt: skip
    context = JobContext(id=job_id, attempt=attempt, job_type=job_type, parameters=parameters,
                         queue_name=queue_name, report_progress=report_progress,
                         check_cancel=check_cancel)  # fmt: skip
    if task.takes_progress_callback(len(args)):  # a callable cannot travel in JSON
        kwargs["progress_callback"] = ProgressCallback(context)
    problem = parameters_problem(task.func, args, kwargs)  # with the callback given
    if problem is not None:
        return ("error", job_id, attempt, "InvalidParameters",
                f"invalid parameters for {job_type}: {problem}", None, True)  # fmt: skip
    token = bind_job(context)
    try:
        value = call_task(task.func, args, kwargs)
    except BaseException as exc:  # noqa: BLE001 - a task's failure is data, not our crash
        kind = type(exc).__name__
        return ("error", job_id, attempt, kind, _clip_start(str(exc) or kind, ERROR_MESSAGE_MAX),
                _clip_middle(traceback.format_exc(), TRACEBACK_MAX), task.is_permanent(exc))  # fmt: skip
    finally:
        unbind_job(token)
    try:
        result_json = dumps(value)
    except (TypeError, ValueError) as exc:
        return ("error", job_id, attempt, "ResultNotSerialisable",
                f"result is not JSON-serialisable: {exc}", None, True)  # fmt: skip
    size = len(result_json.encode("utf-8"))
    if size > max_result_bytes:
        return ("error", job_id, attempt, "ResultTooLarge",
                f"result is {size} bytes, over --max-result-bytes {max_result_bytes}",
                None, True)  # fmt: skip
    return ("done", job_id, attempt, result_json)


def outcome_from_message(
    message: tuple,
    lease_token: str | None,
    *,
    worker: dict[str, Any] | None = None,
    task_policy: Any = None,
    started_at: str | None = None,
) -> Outcome:
    """The outcome a "done" or "error" message means (the supervisor and eager mode agree)."""
    base = {"job_id": message[1], "attempt": message[2], "lease_token": lease_token,
            "worker": worker or {}, "started_at": started_at}  # fmt: skip
    if message[0] == "done":
        return Outcome(**base, kind="completed", result_json=message[3])
    _, _, _, error_type, error, trace, permanent = message
    return Outcome(**base, kind="failed", error=error, error_type=error_type, traceback=trace,
                   permanent=bool(permanent), task_policy=task_policy)  # fmt: skip
