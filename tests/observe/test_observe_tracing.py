"""One trace from a REST request to the worker's start, across the three components.

Each component gets its own tracer provider and in-memory exporter, as each
process of ``corral up`` would have its own: the spans that each exporter
received must share one trace id and chain parent to child from the
gateway's request, over gRPC metadata to the manager, and through the
assignment to the worker.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from observe_stack import stack
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from corral import logformat, tracing
from corral.model import TaskSpec, TaskState


@pytest.fixture
def exporters() -> Iterator[dict[str, InMemorySpanExporter]]:
    out = {}
    for component in tracing.COMPONENTS:
        provider = tracing.new_provider(component)
        out[component] = InMemorySpanExporter()
        provider.add_span_processor(SimpleSpanProcessor(out[component]))
        tracing.install(component, provider)
    yield out
    tracing.shutdown()


def by_name(spans: Any) -> dict[str, Any]:
    return {span.name: span for span in spans}


async def test_a_rest_submit_is_one_trace_across_gateway_manager_and_worker(
    tmp_path: Path, exporters: dict[str, InMemorySpanExporter]
) -> None:
    async with stack(tmp_path) as s:
        spec = {"name": "traced", "command": ["echo", "hi"]}
        reply = await s.http.post("/v1/tasks", json={"spec": spec})
        assert reply.status_code == 200, reply.text
        done = await s.client.wait(reply.json()["id"], timeout=30)
        assert done.status.state is TaskState.COMPLETED

    gateway = by_name(exporters["gateway"].get_finished_spans())
    manager = by_name(exporters["manager"].get_finished_spans())
    worker = by_name(exporters["worker"].get_finished_spans())
    request = gateway["POST /v1/tasks"]
    submit = manager["/corral.v1.ManagerService/SubmitTask"]
    place, assign = manager["manager.place"], manager["manager.assign"]
    received, start = worker["worker.assign"], worker["worker.start"]

    trace_id = request.context.trace_id
    for span in (submit, place, assign, received, start):
        assert span.context.trace_id == trace_id, span.name
    # Parent to child: gRPC metadata, the remembered submit, the assignment.
    assert submit.parent.span_id == request.context.span_id
    assert place.parent.span_id == submit.context.span_id
    assert assign.parent.span_id == place.context.span_id
    assert received.parent.span_id == assign.context.span_id
    assert start.parent.span_id == received.context.span_id
    # Three services, as three processes would report them.
    services = {
        exporter.get_finished_spans()[0].resource.attributes["service.name"]
        for exporter in exporters.values()
    }
    assert services == {"corral-gateway", "corral-manager", "corral-worker"}
    assert request.attributes["http.route"] == "/v1/tasks"
    assert start.attributes["corral.task_id"] == done.id
    assert start.attributes["corral.node_id"] == done.status.node_id


async def test_untraced_calls_and_the_worker_stream_add_no_spans(
    tmp_path: Path, exporters: dict[str, InMemorySpanExporter]
) -> None:
    async with stack(tmp_path) as s:
        # The Python client sends no traceparent: nothing to continue.
        task = await s.client.submit(TaskSpec(name="quiet", command=("true",)))
        done = await s.client.wait(task.id, timeout=30)
        assert done.status.state is TaskState.COMPLETED
    assert exporters["manager"].get_finished_spans() == ()
    assert exporters["worker"].get_finished_spans() == ()


def test_tracing_is_off_without_the_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(tracing.ENDPOINT_VAR, raising=False)
    assert tracing.setup("manager") is False
    assert not tracing.enabled("manager")
    with tracing.span("manager", "nothing") as span:
        assert span is None and tracing.carrier() == {} and tracing.current_trace_id() == ""


def test_the_endpoint_turns_it_on(monkeypatch: pytest.MonkeyPatch) -> None:
    # The exporter sends in batches from a thread; nothing is sent unless a span ends.
    monkeypatch.setenv(tracing.ENDPOINT_VAR, "http://127.0.0.1:4317")
    try:
        assert tracing.setup("worker") is True
        assert tracing.enabled("worker") and not tracing.enabled("gateway")
    finally:
        tracing.shutdown()


def test_log_lines_carry_the_trace_id(
    exporters: dict[str, InMemorySpanExporter],
) -> None:
    with tracing.span("manager", "work"):
        trace_id = tracing.current_trace_id()
        line = json.loads(logformat.JsonFormatter().format(logging.makeLogRecord({"msg": "x"})))
    assert len(trace_id) == 32 and line["trace_id"] == trace_id
