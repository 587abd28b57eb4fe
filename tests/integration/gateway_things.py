"""The test-only ThingService: compiled from tests/protos at test time and
served in-process, so the gateway's generic translation is exercised on a
proto it has never seen."""

from __future__ import annotations

import contextlib
import importlib.util
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from types import ModuleType
from typing import Any

import grpc
import grpc_tools
from google.api import annotations_pb2
from grpc_tools import protoc

from corral.errors import ValidationError
from corral.statuses import error_status

PROTOS = Path(__file__).resolve().parents[1] / "protos"
SERVICE = "gatewaytest.v1.ThingService"


def compile_things(out: Path) -> ModuleType:
    """Compile things.proto with grpc_tools.protoc into ``out`` and import it."""
    googleapis = Path(annotations_pb2.__file__).parents[2]
    well_known = Path(grpc_tools.__file__).parent / "_proto"
    args = [
        "protoc",
        f"-I{PROTOS}",
        f"-I{well_known}",
        f"-I{googleapis}",
        f"--python_out={out}",
        "gatewaytest/v1/things.proto",
    ]
    assert protoc.main(args) == 0, "protoc failed"
    name = "gatewaytest_things_pb2"
    if name in sys.modules:  # the default pool takes a file once per process
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, out / "gatewaytest/v1/things_pb2.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    sys.modules[name] = module
    return module


def handler(pb: Any) -> grpc.GenericRpcHandler:
    async def get_thing(req: Any, ctx: Any) -> Any:
        if req.name == "missing":
            await ctx.abort(grpc.StatusCode.NOT_FOUND, f"thing {req.name!r} not found")
        return pb.GetThingResponse(thing=pb.Thing(name=req.name, size=3), hidden="secret")

    async def create_thing(req: Any, ctx: Any) -> Any:
        return pb.CreateThingResponse(received=req)

    async def search_things(req: Any, ctx: Any) -> Any:
        return pb.SearchThingsResponse(received=req)

    async def patch_thing(req: Any, ctx: Any) -> Any:
        return pb.PatchThingResponse(received=req)

    async def list_things(req: Any, ctx: Any) -> AsyncIterator[Any]:
        for i in range(req.count):
            yield pb.ListThingsResponse(thing=pb.Thing(name=f"t{i}", size=i))
        if req.then_fail:
            await ctx.abort(grpc.StatusCode(_code(req.then_fail)), "stream failed")

    async def fail(req: Any, ctx: Any) -> Any:
        if req.field:
            await ctx.abort_with_status(error_status(ValidationError(req.field, "is wrong")))
        await ctx.abort(_code(req.code), f"failing with {req.code}")

    async def whoami(req: Any, ctx: Any) -> Any:
        metadata = dict(ctx.invocation_metadata() or ())
        remaining = ctx.time_remaining()
        return pb.WhoamiResponse(
            authorization=metadata.get("authorization", ""),
            time_remaining=-1.0 if remaining is None else remaining,
        )

    def unary(fn: Any, req: Any, resp: Any) -> grpc.RpcMethodHandler:
        return grpc.unary_unary_rpc_method_handler(
            fn, request_deserializer=req.FromString, response_serializer=resp.SerializeToString
        )

    return grpc.method_handlers_generic_handler(
        SERVICE,
        {
            "GetThing": unary(get_thing, pb.GetThingRequest, pb.GetThingResponse),
            "CreateThing": unary(create_thing, pb.CreateThingRequest, pb.CreateThingResponse),
            "SearchThings": unary(search_things, pb.SearchThingsRequest, pb.SearchThingsResponse),
            "PatchThing": unary(patch_thing, pb.PatchThingRequest, pb.PatchThingResponse),
            "ListThings": grpc.unary_stream_rpc_method_handler(
                list_things,
                request_deserializer=pb.ListThingsRequest.FromString,
                response_serializer=pb.ListThingsResponse.SerializeToString,
            ),
            "Fail": unary(fail, pb.FailRequest, pb.FailResponse),
            "Whoami": unary(whoami, pb.WhoamiRequest, pb.WhoamiResponse),
        },
    )


def _code(number: int) -> grpc.StatusCode:
    return next(c for c in grpc.StatusCode if c.value[0] == number)


@contextlib.asynccontextmanager
async def things_server(pb: Any) -> AsyncIterator[str]:
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((handler(pb),))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        await server.stop(0)
