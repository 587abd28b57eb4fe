"""Bad input over gRPC is INVALID_ARGUMENT naming the field, for every kind the guard
(``corral.guarding``) and the error path (``corral.serving``) handle: undecodable
bytes, undefined enum numbers, empty required fields, and errors that would echo
a huge input into metadata."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from corral.serving import channel
from corral.statuses import MAX_ERROR_CHARS
from corral.v1 import manager_pb2, manager_pb2_grpc, types_pb2
from manager.server import RunningManager
from tests.integration.test_manager_dispatch import spec, start, target


@pytest.fixture
async def manager(tmp_path: Path) -> AsyncIterator[RunningManager]:
    running = await start(tmp_path / "m")
    yield running
    await running.stop(0)


@pytest.fixture
async def ch(manager: RunningManager) -> AsyncIterator[grpc.aio.Channel]:
    async with channel(target(manager)) as c:
        yield c


def refused(err: grpc.aio.AioRpcError) -> tuple[str, str]:
    """The code must be INVALID_ARGUMENT; returns the named field and the details."""
    assert err.code() is grpc.StatusCode.INVALID_ARGUMENT, (err.code(), err.details())
    status = rpc_status.from_call(err)  # type: ignore[arg-type]
    assert status is not None
    detail = error_details_pb2.BadRequest()
    assert status.details[0].Unpack(detail)
    return str(detail.field_violations[0].field), str(err.details())


@pytest.mark.parametrize(
    ("method", "request_type"),
    [
        ("GetTask", manager_pb2.GetTaskRequest),
        ("StopTask", manager_pb2.StopTaskRequest),
        ("GetNode", manager_pb2.GetNodeRequest),
        ("DrainNode", manager_pb2.DrainNodeRequest),
    ],
)
async def test_an_empty_id_is_refused_naming_id(
    ch: grpc.aio.Channel, method: str, request_type: type
) -> None:
    call = ch.unary_unary(
        f"/corral.v1.ManagerService/{method}",
        request_serializer=lambda m: m.SerializeToString(),
        response_deserializer=lambda b: b,
    )
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call(request_type(id=""), timeout=10)
    assert refused(err.value)[0] == "id"


async def test_undefined_enum_numbers_are_refused_naming_the_field(ch: grpc.aio.Channel) -> None:
    stub = manager_pb2_grpc.ManagerServiceStub(ch)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.ListTasks(manager_pb2.ListTasksRequest(states=[2, 99]), timeout=10)
    field, details = refused(err.value)
    assert field == "states[1]" and "99 is not one of" in details
    bad = spec("odd")
    bad.restart_policy.mode = 99  # type: ignore[assignment]
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.SubmitTask(manager_pb2.SubmitTaskRequest(spec=bad), timeout=10)
    assert refused(err.value)[0] == "spec.restart_policy.mode"


async def test_undecodable_bytes_are_refused(ch: grpc.aio.Channel) -> None:
    raw = ch.unary_unary(
        "/corral.v1.ManagerService/SubmitTask",
        request_serializer=lambda b: b,
        response_deserializer=lambda b: b,
    )
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await raw(b"\xff\xff\xff\xff\x0f", timeout=10)
    field, details = refused(err.value)
    assert field == "request" and "cannot be decoded" in details


async def test_an_error_never_echoes_a_huge_input_whole(ch: grpc.aio.Channel) -> None:
    stub = manager_pb2_grpc.ManagerServiceStub(ch)
    huge = "x" * 20_000
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.GetTask(manager_pb2.GetTaskRequest(id=huge), timeout=10)
    assert err.value.code() in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND)
    assert len(err.value.details() or "") <= MAX_ERROR_CHARS


async def test_a_replaced_task_must_stop_before_the_ttl(ch: grpc.aio.Channel) -> None:
    stub = manager_pb2_grpc.ManagerServiceStub(ch)
    late = spec("late", disconnect=types_pb2.DisconnectPolicy(stop_after={"seconds": 60}))
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.SubmitTask(manager_pb2.SubmitTaskRequest(spec=late), timeout=10)
    assert refused(err.value)[0] == "spec.disconnect.stop_after"
    kept = spec(
        "kept", disconnect=types_pb2.DisconnectPolicy(stop_after={"seconds": 60}, replace=False)
    )
    reply = await stub.SubmitTask(manager_pb2.SubmitTaskRequest(spec=kept), timeout=10)
    assert reply.task.spec.disconnect.replace is False


async def test_watching_from_a_future_index_is_refused_at_once(ch: grpc.aio.Channel) -> None:
    stub = manager_pb2_grpc.ManagerServiceStub(ch)
    call = stub.WatchEvents(manager_pb2.WatchEventsRequest(from_index=10**9), timeout=10)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        async for _ in call:
            pass
    field, details = refused(err.value)
    assert field == "from_index" and "past the latest event" in details


async def test_health_list_names_every_service(ch: grpc.aio.Channel) -> None:
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    reply = await health_pb2_grpc.HealthStub(ch).List(health_pb2.HealthListRequest(), timeout=10)
    assert reply.statuses["corral.v1.ManagerService"].status == (
        health_pb2.HealthCheckResponse.SERVING
    )


async def test_a_manifest_that_is_not_json_is_refused_naming_it(ch: grpc.aio.Channel) -> None:
    stub = manager_pb2_grpc.ManagerServiceStub(ch)
    bad = types_pb2.TaskSpec(
        name="k",
        runtime="kubernetes",
        kubernetes=types_pb2.KubernetesSpec(manifests=['{"kind": "Job"', "x" * 5_000_000]),
    )
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.SubmitTask(manager_pb2.SubmitTaskRequest(spec=bad), timeout=30)
    field, details = refused(err.value)
    assert field == "spec.kubernetes.manifests[0]" and "not valid JSON" in details
