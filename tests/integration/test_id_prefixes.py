"""Any unique id prefix of 8+ characters names a task or a node, through gRPC, REST and the CLI."""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc
import httpx
import pytest
from typer.testing import CliRunner

from corral.cli import main
from corral.serving import channel
from corral.v1 import manager_pb2, manager_pb2_grpc
from gateway.server import serve as serve_gateway
from tests.integration.test_manager_dispatch import spec, start, target
from tests.simworker import SimWorker

IDS = ("abcdef12-0000-4000-8000-000000000001", "abcdef12-9999-4000-8000-000000000002")


async def test_prefixes_resolve_and_ambiguity_lists_the_matches(tmp_path: Path) -> None:
    manager = await start(tmp_path)
    gateway = await serve_gateway(target(manager), "127.0.0.1:0", compat_modules=[])
    try:
        async with channel(target(manager)) as ch:
            stub = manager_pb2_grpc.ManagerServiceStub(ch)
            worker = SimWorker(target(manager), "0d9e1f4b-7777-4000-8000-00000000000a")
            await worker.connect()
            request = manager_pb2.SubmitTasksRequest(
                tasks=[
                    manager_pb2.SubmitTaskRequest(id=i, spec=spec(f"t{n}"))
                    for n, i in enumerate(IDS)
                ]
            )
            await stub.SubmitTasks(request, timeout=5)
            got = await stub.GetTask(manager_pb2.GetTaskRequest(id="abcdef12-9"), timeout=5)
            assert got.task.id == IDS[1]
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await stub.GetTask(manager_pb2.GetTaskRequest(id="abcdef12"), timeout=5)
            assert err.value.code() is grpc.StatusCode.INVALID_ARGUMENT
            assert IDS[0] in err.value.details() and IDS[1] in err.value.details()
            # Seven characters are not a prefix: a typo should not find a task.
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await stub.GetTask(manager_pb2.GetTaskRequest(id="abcdef1"), timeout=5)
            assert err.value.code() is grpc.StatusCode.NOT_FOUND
            node = await stub.GetNode(manager_pb2.GetNodeRequest(id="0d9e1f4b"), timeout=5)
            assert node.node.id == "0d9e1f4b-7777-4000-8000-00000000000a"

            base = f"http://127.0.0.1:{gateway.port}"
            async with httpx.AsyncClient(base_url=base, timeout=10) as http:
                assert (await http.get("/v1/tasks/abcdef12-0")).json()["id"] == IDS[0]
                assert (await http.get("/v1/tasks/abcdef12")).status_code == 400

            def cli(*args: str) -> tuple[int, str]:
                result = CliRunner().invoke(main.build(), [*args, "--manager", target(manager)])
                return result.exit_code, result.output

            code, out = await asyncio.to_thread(cli, "task", "stop", "abcdef12-0000")
            assert code == 0, out
            code, out = await asyncio.to_thread(cli, "task", "get", "abcdef12")
            assert code == 1 and "ambiguous" in out and IDS[1] in out
            code, out = await asyncio.to_thread(cli, "task", "ls")
            assert code == 0 and "abcdef12-0" in out and IDS[0] not in out
            await worker.close()
    finally:
        await gateway.stop()
        await manager.stop(0)
