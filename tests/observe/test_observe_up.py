"""``corral up`` as a user runs it, watched the way an operator would.

Its three processes serve /metrics on the ports asked for, log JSON lines,
and export spans to an OTLP collector (a small one in this test, on
127.0.0.1): one REST submit yields one trace with spans from the gateway,
the manager and the worker processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
from collections import defaultdict
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from waiting import free_port

otlp = pytest.importorskip("opentelemetry.proto.collector.trace.v1.trace_service_pb2_grpc")
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2  # noqa: E402

READY_TIMEOUT = 90.0


class Collector(otlp.TraceServiceServicer):  # type: ignore[misc, name-defined]
    """Keeps every exported span as (service, trace id, span name); wakes waiters."""

    def __init__(self) -> None:
        self.spans: list[tuple[str, str, str]] = []
        self.changed = asyncio.Event()

    async def Export(self, request: Any, context: Any) -> Any:
        for resource_spans in request.resource_spans:
            attributes = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
            service = attributes.get("service.name", "")
            for scope in resource_spans.scope_spans:
                for span in scope.spans:
                    self.spans.append((service, span.trace_id.hex(), span.name))
        self.changed.set()
        return trace_service_pb2.ExportTraceServiceResponse()

    def services_of(self, trace_id: str) -> set[str]:
        return {service for service, t, _ in self.spans if t == trace_id}


@contextlib.asynccontextmanager
async def collector() -> AsyncIterator[tuple[Collector, int]]:
    server = grpc.aio.server()
    found = Collector()
    otlp.add_TraceServiceServicer_to_server(found, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield found, port
    finally:
        await server.stop(0)


async def test_up_serves_metrics_logs_json_and_traces_across_processes(tmp_path: Path) -> None:
    ports = {name: free_port() for name in ("manager", "worker", "gateway", "mm", "wm", "gm")}
    async with collector() as (spans, otlp_port):
        env = {
            **os.environ,
            "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{otlp_port}",
            "OTEL_EXPORTER_OTLP_INSECURE": "true",
            "OTEL_BSP_SCHEDULE_DELAY": "100",
        }
        args = ["up", "--manager-listen", f"127.0.0.1:{ports['manager']}"]
        args += ["--worker-listen", f"127.0.0.1:{ports['worker']}"]
        args += ["--gateway-listen", f"127.0.0.1:{ports['gateway']}"]
        args += ["--manager-metrics-listen", f"127.0.0.1:{ports['mm']}"]
        args += ["--worker-metrics-listen", f"127.0.0.1:{ports['wm']}"]
        args += ["--gateway-metrics-listen", f"127.0.0.1:{ports['gm']}"]
        args += ["--log-format", "json"]
        up = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "corral.cli.main", *args,
            cwd=tmp_path, env=env, stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        lines: list[str] = []
        more = asyncio.Event()
        reader = asyncio.create_task(_collect(up, lines, more))
        try:
            await _wait_for_line(lines, more, "Corral is up")
            async with httpx.AsyncClient(timeout=30) as http:
                base = f"http://127.0.0.1:{ports['gateway']}"
                spec = {"name": "traced", "command": ["echo", "hi"]}
                reply = await http.post(f"{base}/v1/tasks", json={"spec": spec})
                assert reply.status_code == 200, reply.text
                trace_id = await _one_trace(spans)
                assert spans.services_of(trace_id) == {
                    "corral-gateway",
                    "corral-manager",
                    "corral-worker",
                }
                for name in ("mm", "wm", "gm"):
                    body = (await http.get(f"http://127.0.0.1:{ports[name]}/metrics")).text
                    assert "corral_" in body, name
                manager_metrics = (await http.get(f"http://127.0.0.1:{ports['mm']}/metrics")).text
                assert 'corral_nodes{status="READY"} 1.0' in manager_metrics
                gateway_metrics = (await http.get(f"http://127.0.0.1:{ports['gm']}/metrics")).text
                assert 'route="/v1/tasks"' in gateway_metrics
        finally:
            if up.returncode is None:
                up.send_signal(signal.SIGINT)
            async with asyncio.timeout(60):
                code = await up.wait()
            await reader
        assert code == 0, "\n".join(lines[-40:])
    # Every line a child logged is one JSON object (``up`` prefixes the child's name).
    logged = [line.split("] ", 1)[1] for line in lines if line.startswith("[worker] ")]
    assert logged, "\n".join(lines[-40:])
    records = [json.loads(line) for line in logged]
    assert all({"time", "level", "logger", "message"} <= set(r) for r in records)


async def _collect(up: asyncio.subprocess.Process, lines: list[str], more: asyncio.Event) -> None:
    async def pump(stream: asyncio.StreamReader | None) -> None:
        assert stream is not None
        async for raw in stream:
            lines.append(raw.decode(errors="replace").rstrip())
            more.set()

    await asyncio.gather(pump(up.stdout), pump(up.stderr))
    more.set()  # the end is news too


async def _wait_for_line(lines: list[str], more: asyncio.Event, text: str) -> None:
    async with asyncio.timeout(READY_TIMEOUT):
        while not any(text in line for line in lines):
            if more.is_set() and lines and "exited with code" in lines[-1]:
                raise AssertionError("\n".join(lines[-40:]))
            more.clear()
            await more.wait()


async def _one_trace(spans: Collector) -> str:
    """The trace of the submit once spans from all three processes arrived in it."""
    async with asyncio.timeout(60):
        while True:
            by_trace: dict[str, set[str]] = defaultdict(set)
            for service, trace_id, _ in spans.spans:
                by_trace[trace_id].add(service)
            for trace_id, services in by_trace.items():
                if len(services) == 3:
                    return trace_id
            spans.changed.clear()
            await spans.changed.wait()
