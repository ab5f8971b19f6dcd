"""Issue 15, item 2: OpenTelemetry. An enqueue inside a traced request is a PRODUCER
span whose context the job stores; the worker (its provider set up by ``--otel``) runs
the job in a CONSUMER span continuing that trace, and exports it through a
BatchSpanProcessor before it exits."""

from __future__ import annotations

import asyncio
import json

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from otel_setup import span_record
from supervisor_harness import wait_until

import jobtui
from jobtui import aio
from jobtui.models import Job

pytestmark = pytest.mark.timeout(90)

TASKS = ("supervisor_tasks", "observability_tasks")


@pytest.fixture
def exporter():
    """A tracer provider for this test's process (the web application's side), removed
    afterwards so that other tests run untraced."""
    from opentelemetry.util._once import Once

    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    trace._TRACER_PROVIDER_SET_ONCE = Once()  # the API sets a provider once per process
    trace.set_tracer_provider(provider)
    try:
        yield memory
    finally:
        provider.shutdown()
        trace._TRACER_PROVIDER = None
        trace._TRACER_PROVIDER_SET_ONCE = Once()


def _spans(path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_a_trace_shows_the_request_the_enqueue_and_each_run(cluster, exporter, tmp_path):
    spans_file = tmp_path / "worker-spans.jsonl"
    cluster.env["JOBTUI_E2E_SPANS"] = str(spans_file)
    cluster.start("--otel", "otel_setup:init", imports=TASKS)  # its task catalog names queues
    rootless = jobtui.enqueue("observability_tasks.echo", args=["cron-like"])  # no span open
    tracer = trace.get_tracer("web")
    with tracer.start_as_current_span("GET /checkout", kind=trace.SpanKind.SERVER) as request:
        done = jobtui.enqueue("observability_tasks.echo", args=[1])
        failed = jobtui.enqueue("observability_tasks.boom", args=["no stock"])
        inner = jobtui.enqueue("observability_tasks.with_inner_span")
        many = jobtui.enqueue_many("observability_tasks.echo", [{"args": [2]}, {"args": [3]}])
    ids = [done.id, failed.id, inner.id, *(j.id for j in many), rootless.id]
    rows = cluster.wait_status(ids)
    assert rows[failed.id].status == "failed" and rows[done.id].status == "completed"
    cluster.stop()  # the workers flush their BatchSpanProcessor as they exit

    trace_id = format(request.get_span_context().trace_id, "032x")
    request_id = format(request.get_span_context().span_id, "016x")
    local = [span_record(s) for s in exporter.get_finished_spans()]
    producers = [s for s in local if s["kind"] == "PRODUCER"]
    assert len(producers) == 5  # four enqueues and one enqueue_many
    (root,) = [s for s in producers if s["attributes"].get("messaging.message.id") == rootless.id]
    assert root["parent_id"] is None and root["trace_id"] != trace_id  # a trace of its own
    producers.remove(root)
    for span in producers:
        assert span["trace_id"] == trace_id and span["parent_id"] == request_id
        assert span["attributes"]["messaging.system"] == "jobtui"
        assert span["attributes"]["messaging.operation.type"] == "send"
        assert span["name"] == "send obs"
    by_message = {s["attributes"].get("messaging.message.id"): s for s in producers}
    batch = next(s for s in producers if "messaging.batch.message_count" in s["attributes"])
    assert batch["attributes"]["messaging.batch.message_count"] == 2
    stored = Job.get_by_id(done.id).trace_context
    assert json.loads(stored)["traceparent"].split("-")[1:3] == [
        trace_id, by_message[done.id]["span_id"]]  # fmt: skip

    exported = wait_until(lambda: _spans(spans_file), 5, "the workers' spans")
    consumers = {s["attributes"]["messaging.message.id"]: s for s in exported
                 if s["kind"] == "CONSUMER"}  # fmt: skip
    assert set(consumers) == set(ids)
    for job_id in (done.id, failed.id, inner.id):
        span = consumers[job_id]
        assert span["trace_id"] == trace_id and span["parent_id"] == by_message[job_id]["span_id"]
        assert span["name"] == "process obs"
        attributes = span["attributes"]
        assert attributes["messaging.destination.name"] == "obs"
        assert attributes["messaging.operation.type"] == "process"
        assert attributes["jobtui.job.attempt"] == 1
    for job in many:
        assert consumers[job.id]["parent_id"] == batch["span_id"]
    assert consumers[rootless.id]["trace_id"] == root["trace_id"]
    assert consumers[rootless.id]["parent_id"] == root["span_id"]
    ok = consumers[done.id]
    assert ok["status"] == "UNSET" and ok["attributes"]["jobtui.job.outcome"] == "completed"
    assert ok["attributes"]["jobtui.task"] == "observability_tasks.echo"
    bad = consumers[failed.id]
    assert bad["status"] == "ERROR" and bad["attributes"]["jobtui.job.outcome"] == "failed"
    assert bad["attributes"]["error.type"] == "ValueError"
    (event,) = bad["events"]
    assert event["name"] == "exception" and event["attributes"]["exception.type"] == "ValueError"
    assert event["attributes"]["exception.message"] == "no stock"
    assert "raise ValueError(text)" in event["attributes"]["exception.stacktrace"]
    nested = [s for s in exported if s["name"] == "inner work"]
    assert len(nested) == 1 and nested[0]["parent_id"] == consumers[inner.id]["span_id"]
    workers = {pid for job_id in ids for pid in [consumers[job_id]["pid"]]}
    assert workers and all(pid != cluster.supervisors[0].pid for pid in workers)


def test_aio_enqueue_carries_the_loop_sides_trace(db, exporter):
    tracer = trace.get_tracer("web")

    async def handler() -> tuple:
        with tracer.start_as_current_span("POST /orders") as request:
            job = await aio.enqueue("observability_tasks.echo", args=[1], queue="obs")
            async with aio.batch() as b:
                await aio.enqueue("observability_tasks.echo", args=[2], queue="obs")
            return request.get_span_context(), job, b

    try:
        context, job, b = asyncio.run(handler())
    finally:
        aio.stop_runner()
    trace_id = format(context.trace_id, "032x")
    producers = [span_record(s) for s in exporter.get_finished_spans() if s.kind.name == "PRODUCER"]
    assert len(producers) == 2
    assert all(p["trace_id"] == trace_id for p in producers)
    batched = Job.select().where(Job.batch_id == b.id).get()
    for row in (Job.get_by_id(job.id), batched):
        assert json.loads(row.trace_context)["traceparent"].split("-")[1] == trace_id


def test_without_a_provider_nothing_is_stored_and_a_bad_initialiser_is_refused(cluster):
    job = jobtui.enqueue("observability_tasks.echo", args=[1])
    assert Job.get_by_id(job.id).trace_context is None
    bad = cluster.start("--otel", "no_such_module:init", imports=TASKS, wait=False)
    bad.expect_exit = 1
    assert bad.wait_exit(15) == 1
    assert "--otel no_such_module:init: ModuleNotFoundError" in bad.log()
