"""A drain survives a manager restart, and undrain (gRPC, REST, CLI) lets the node work again."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
from typer.testing import CliRunner
from waiting import eventually

from corral.cli import main
from corral.serving import channel
from corral.v1 import manager_pb2, manager_pb2_grpc, types_pb2
from gateway.server import serve as serve_gateway
from tests.integration.test_manager_dispatch import spec, start, state_of, target
from tests.simworker import SimWorker

T = types_pb2


async def _status(stub: manager_pb2_grpc.ManagerServiceStub) -> int:
    return (await stub.GetNode(manager_pb2.GetNodeRequest(id="n1"), timeout=5)).node.status


async def test_drain_survives_a_restart_and_undrain_undoes_it(tmp_path: Path) -> None:
    manager = await start(tmp_path)
    async with channel(target(manager)) as ch:
        stub = manager_pb2_grpc.ManagerServiceStub(ch)
        worker = SimWorker(target(manager), "n1")
        await worker.connect()
        drained = await stub.DrainNode(manager_pb2.DrainNodeRequest(id="n1"), timeout=5)
        assert drained.node.status == T.NODE_STATUS_DRAINING
        await worker.close()
    await manager.stop(0)

    manager = await start(tmp_path)  # the same data dir: a restarted manager
    gateway = await serve_gateway(target(manager), "127.0.0.1:0", compat_modules=[])
    try:
        async with channel(target(manager)) as ch:
            stub = manager_pb2_grpc.ManagerServiceStub(ch)
            worker = SimWorker(target(manager), "n1")
            await worker.connect()
            assert await _status(stub) == T.NODE_STATUS_DRAINING
            request = manager_pb2.SubmitTaskRequest(spec=spec("waits"))
            task = (await stub.SubmitTask(request, timeout=5)).task
            waiting = await eventually(lambda: _pending_with_reason(stub, task.id))
            assert "not ready" in waiting.status.message

            # REST: the route comes from the RPC's annotation.
            base = f"http://127.0.0.1:{gateway.port}"
            async with httpx.AsyncClient(base_url=base, timeout=10) as http:
                r = await http.post("/v1/nodes/n1:undrain", json={})
                assert r.status_code == 200, r.text
                assert r.json()["status"] == "NODE_STATUS_READY"
                r = await http.post("/v1/nodes/nobody:undrain", json={})
                assert r.status_code == 404
            await eventually(lambda: _running(stub, task.id))

            # CLI: drain again, then undrain by name.
            await stub.DrainNode(manager_pb2.DrainNodeRequest(id="n1"), timeout=5)
            result = await asyncio.to_thread(
                CliRunner().invoke,
                main.build(),
                ["node", "undrain", "n1", "--manager", target(manager)],
            )
            assert result.exit_code == 0, result.output
            assert "ready" in result.output
            assert await _status(stub) == T.NODE_STATUS_READY
            await worker.close()
    finally:
        await gateway.stop()
        await manager.stop(0)


async def _pending_with_reason(
    stub: manager_pb2_grpc.ManagerServiceStub, ref: str
) -> T.Task | None:
    task = await state_of(stub, ref)
    return task if task.status.state == T.TASK_STATE_PENDING and task.status.message else None


async def _running(stub: manager_pb2_grpc.ManagerServiceStub, ref: str) -> bool:
    return (await state_of(stub, ref)).status.state == T.TASK_STATE_RUNNING
