"""The ``--otel`` initialiser of the tracing tests: each worker gets its own tracer
provider with a BatchSpanProcessor (as production would, with an OTLP exporter) over the
SDK's InMemorySpanExporter, which also appends every span it receives, as one JSON line,
to the file named by JOBTUI_E2E_SPANS, so the test process can read what the workers
exported."""

from __future__ import annotations

import json
import os

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter


def span_record(span) -> dict:
    """What the tests check of a finished span."""
    return {
        "name": span.name, "kind": span.kind.name,
        "trace_id": format(span.context.trace_id, "032x"),
        "span_id": format(span.context.span_id, "016x"),
        "parent_id": format(span.parent.span_id, "016x") if span.parent else None,
        "attributes": dict(span.attributes or {}), "status": span.status.status_code.name,
        "events": [{"name": e.name, "attributes": dict(e.attributes or {})} for e in span.events],
        "pid": os.getpid(),
    }  # fmt: skip


class FileInMemoryExporter(InMemorySpanExporter):
    def export(self, spans):
        result = super().export(spans)
        with open(os.environ["JOBTUI_E2E_SPANS"], "a", encoding="utf-8") as out:
            for span in spans:
                out.write(json.dumps(span_record(span)) + "\n")
        return result


def init() -> None:
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(FileInMemoryExporter()))
    trace.set_tracer_provider(provider)
