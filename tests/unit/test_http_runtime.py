"""The http runtime against real local servers: results, timeouts, refusals, bounds, stop."""

from __future__ import annotations

import time

from schedules_fakes import Endpoints

from corral.model import HttpCall, NodeId, TaskId, TaskSpec
from worker.config import WorkerConfig
from worker.runtimes import http
from worker.runtimes.base import Assignment, AttemptRef, Runtime


def assignment(call: HttpCall, task: str = "t1") -> Assignment:
    spec = TaskSpec(name="call", runtime="http", http=call)
    return Assignment(AttemptRef(TaskId(task), 1), spec, NodeId("n1"))


async def test_implements_the_runtime_protocol() -> None:
    runtime = http.create(WorkerConfig())
    assert isinstance(runtime, Runtime)
    assert await runtime.available()
    assert await runtime.adopt() == []
    await runtime.close()


async def test_a_call_reports_status_latency_and_body_and_logs_a_summary() -> None:
    runtime = http.HttpRuntime()
    async with Endpoints() as ep:
        a = assignment(HttpCall(url=ep.url("ok")))
        await runtime.start(a)
        exit = await runtime.wait(a.ref)
        logs = b"".join([chunk async for chunk in runtime.logs(a.ref)]).decode()
    await runtime.close()
    assert exit.ok and exit.exit_code == 0
    assert exit.result is not None
    assert exit.result.status_code == 200
    assert exit.result.body == b"hello from ok"
    assert 0 < exit.result.latency_ms < 5000
    assert exit.result.error == ""
    assert logs.startswith(f"GET {ep.url('ok')} -> 200 in ") and "(ok)" in logs


async def test_method_headers_and_body_are_sent() -> None:
    runtime = http.HttpRuntime()
    async with Endpoints() as ep:
        call = HttpCall(url=ep.url("echo"), method="POST", headers={"X-T": "v"}, body=b"payload")
        result = await runtime.call(call)
    await runtime.close()
    assert result.status_code == 200
    assert result.body == b'{"method": "POST", "body": "payload", "h": "v"}'


async def test_a_500_fails_unless_expected() -> None:
    runtime = http.HttpRuntime()
    async with Endpoints() as ep:
        a = assignment(HttpCall(url=ep.url("fail")), "t1")
        b = assignment(HttpCall(url=ep.url("fail"), expected_status=(500,)), "t2")
        await runtime.start(a)
        await runtime.start(b)
        failed, accepted = await runtime.wait(a.ref), await runtime.wait(b.ref)
    await runtime.close()
    assert not failed.ok and failed.result is not None and failed.result.status_code == 500
    assert failed.result.body == b"boom"
    assert accepted.ok


async def test_a_hanging_endpoint_is_cut_at_its_timeout() -> None:
    runtime = http.HttpRuntime()
    async with Endpoints() as ep:
        started = time.monotonic()
        result = await runtime.call(HttpCall(url=ep.url("hang"), timeout=0.3))
        took = time.monotonic() - started
    await runtime.close()
    assert 0.25 < took < 3.0
    assert result.status_code == 0
    assert result.error == "timed out after 0.3s"


async def test_a_refused_connection_is_a_recorded_failure(closed_port: int) -> None:
    runtime = http.HttpRuntime()
    a = assignment(HttpCall(url=f"http://127.0.0.1:{closed_port}/x", timeout=2))
    await runtime.start(a)
    exit = await runtime.wait(a.ref)
    await runtime.close()
    assert not exit.ok
    assert exit.result is not None and exit.result.status_code == 0
    assert "ConnectError" in exit.result.error


async def test_the_body_is_bounded() -> None:
    runtime = http.HttpRuntime(body_limit=1000)
    async with Endpoints() as ep:
        result = await runtime.call(HttpCall(url=ep.url("big")))
    await runtime.close()
    assert result.status_code == 200
    assert len(result.body) == 1000 and result.body_truncated


async def test_stop_cancels_the_call() -> None:
    runtime = http.HttpRuntime()
    async with Endpoints() as ep:
        a = assignment(HttpCall(url=ep.url("hang"), timeout=60))
        await runtime.start(a)
        await runtime.stop(a.ref, grace=1)
        exit = await runtime.wait(a.ref)
    await runtime.close()
    assert not exit.ok and exit.message == "stopped"
