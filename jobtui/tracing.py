"""OpenTelemetry traces across the queue: the enqueue is a PRODUCER span, the run a
CONSUMER span that continues its trace, so one trace shows the web request, the enqueue
and each attempt of the job.

Only the optional extra (``pip install 'jobtui[otel]'``: opentelemetry-api) makes this
module useful, and nothing imports it unless OpenTelemetry is already loaded in the
process: ``jobtui.api`` and the worker look for ``opentelemetry.trace`` in
``sys.modules`` (a dictionary look-up) before coming here, so an application or a
supervisor without OpenTelemetry pays nothing, and one with OpenTelemetry but no
configured tracer provider pays one ``isinstance``.

Producer: the current context (W3C ``traceparent``/``tracestate`` and whatever else the
global propagator writes, through ``opentelemetry.propagate``) is injected into a carrier
whose JSON goes into ``jobs.trace_context``. Consumer: the worker extracts it and runs
the task inside ``process <queue>``, a child of the enqueue's span; spans the task starts
nest under it. Attributes follow the OpenTelemetry messaging conventions where they fit
(``messaging.system`` "jobtui", ``messaging.operation.type`` send/process,
``messaging.destination.name`` the queue, ``messaging.message.id`` the job id), plus
``jobtui.task``, ``jobtui.job.attempt`` and ``jobtui.job.outcome``. A failed run records
its exception (an ``exception`` event with type, message and traceback) and ends with
status ERROR and ``error.type``.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence

from jobtui import __version__

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

SYSTEM = "jobtui"
#: What ``sys.modules`` holds once an application or a worker uses OpenTelemetry.
OTEL_MODULE = "opentelemetry.trace"
FLUSH_TIMEOUT_MS = 5000


def _trace() -> Any:
    return sys.modules.get(OTEL_MODULE)


def configured() -> bool:
    """Whether this process has a real tracer provider (not the API's proxy or no-op)."""
    trace = _trace()
    if trace is None:
        return False
    provider = trace.get_tracer_provider()
    return not isinstance(provider, trace.ProxyTracerProvider | trace.NoOpTracerProvider)


def _tracer(trace: Any) -> Any:
    return trace.get_tracer("jobtui", __version__)


class Producer:
    """The PRODUCER span of one enqueue call (one job, or many in one transaction)."""

    def __init__(self, task: str, count: int) -> None:
        from opentelemetry import propagate

        trace = _trace()
        self.trace = trace
        attributes = {"messaging.system": SYSTEM, "messaging.operation.type": "send",
                      "messaging.operation.name": "send", "jobtui.task": task}  # fmt: skip
        if count != 1:
            attributes["messaging.batch.message_count"] = count
        self.span = _tracer(trace).start_span(
            f"send {task}", kind=trace.SpanKind.PRODUCER, attributes=attributes
        )
        carrier: dict[str, str] = {}
        propagate.inject(carrier, context=trace.set_span_in_context(self.span))
        #: What each job of this call stores (None: the propagator wrote nothing).
        self.carrier = json.dumps(carrier, separators=(",", ":")) if carrier else None

    def stamp(self, items: Sequence[dict[str, Any]]) -> None:
        """Give each job's options this call's trace context."""
        if self.carrier is not None:
            for item in items:
                item["trace_context"] = self.carrier

    def written(self, job_ids: Sequence[str], queues: Sequence[str | None]) -> None:
        """The jobs were written: name the destination and the message, end the span."""
        span = self.span
        named = {q for q in queues if q}
        if len(named) == 1:
            queue = named.pop()
            span.set_attribute("messaging.destination.name", queue)
            span.update_name(f"send {queue}")
        if len(job_ids) == 1:
            span.set_attribute("messaging.message.id", job_ids[0])
        span.end()

    def failed(self, exc: BaseException) -> None:
        span = self.span
        span.record_exception(exc)
        span.set_attribute("error.type", type(exc).__name__)
        span.set_status(self.trace.Status(self.trace.StatusCode.ERROR, str(exc)[:500]))
        span.end()


def producer(task: str, count: int) -> Producer | None:
    """A PRODUCER span for an enqueue of ``count`` jobs of ``task``, or None when this
    process has no tracer provider."""
    return Producer(task, count) if configured() else None


def run_in_consumer_span(job: tuple, run: Callable[[], tuple]) -> tuple:
    """Run ``run`` (the job's execution, returning the worker's outcome message) inside a
    CONSUMER span continuing the job's trace context; only ``run`` when no tracer
    provider is configured. ``job`` is the wire tuple (id, task, parameters, attempt,
    queue[, seq[, trace_context]])."""
    if not configured():
        return run()
    from opentelemetry import propagate

    trace = _trace()
    parent = None
    if len(job) > 6 and job[6]:
        try:
            carrier = json.loads(job[6])
        except ValueError:
            carrier = None
        if isinstance(carrier, dict):
            parent = propagate.extract(carrier)
    job_id, task, attempt = job[0], job[1], job[3]
    queue = job[4] if len(job) > 4 else "default"
    span = _tracer(trace).start_span(
        f"process {queue}", context=parent, kind=trace.SpanKind.CONSUMER,
        attributes={"messaging.system": SYSTEM, "messaging.operation.type": "process",
                    "messaging.operation.name": "process",
                    "messaging.destination.name": queue, "messaging.message.id": job_id,
                    "jobtui.task": task, "jobtui.job.attempt": attempt},
    )  # fmt: skip
    try:
        with trace.use_span(span, end_on_exit=False, record_exception=False,
                            set_status_on_exception=False):  # fmt: skip
            outcome = run()
        if outcome[0] == "done":
            span.set_attribute("jobtui.job.outcome", "completed")
        else:  # ("error", id, attempt, type, message, traceback, permanent, ...)
            error_type, message, traceback = outcome[3], outcome[4], outcome[5]
            span.set_attribute("jobtui.job.outcome", "failed")
            span.set_attribute("error.type", error_type)
            span.add_event("exception", {"exception.type": error_type,
                                         "exception.message": message or "",
                                         "exception.stacktrace": traceback or ""})  # fmt: skip
            span.set_status(trace.Status(trace.StatusCode.ERROR, (message or "")[:500]))
        return outcome
    finally:
        span.end()


def flush() -> None:
    """Export what the provider still holds (a worker about to ``os._exit``: its
    BatchSpanProcessor's thread would otherwise take the spans with it)."""
    if not configured():
        return
    provider = _trace().get_tracer_provider()
    force_flush = getattr(provider, "force_flush", None)
    if force_flush is not None:
        try:
            force_flush(FLUSH_TIMEOUT_MS)
        except Exception:  # noqa: BLE001 - an exporter's failure must not stop the exit
            pass


def call_initialiser(spec: str) -> None:
    """Call ``--otel MODULE:FUNCTION`` in a worker just forked (it sets up the worker's
    tracer provider and exporter); a failure is logged, and the worker runs untraced."""
    import importlib
    import logging

    module_name, _, attr = spec.partition(":")
    try:
        target: Any = importlib.import_module(module_name)
        for part in attr.split("."):
            target = getattr(target, part)
        target()
    except Exception:  # noqa: BLE001 - tracing must never stop a worker
        logging.getLogger(__name__).exception("--otel %s raised in a worker; its jobs run "
                                              "untraced", spec)  # fmt: skip
