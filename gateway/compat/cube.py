"""The Cube routes (*Build an Orchestrator in Go*) and gokube's singular twins.

``POST /tasks`` takes a Cube TaskEvent and answers 201 with the Task;
``GET /tasks``, ``GET /tasks/{id}``, ``DELETE /tasks/{id}`` (204, stops it);
``GET /nodes`` and ``GET /stats`` (the nodes' Stats summed, CPU their mean).
``/task`` serves the same in gokube's dialect (its Task has ``ExposedPort``,
``HostPorts``, no ``Cpu``; errors ``{"HttpStatusCode", "Message"}``). Errors
are Cube's ``{"HTTPStatusCode": 400, "Message": ...}``; the JSON shapes and the
translation choices are in ``corral.cube``. The manager
decides where a task runs and says why it waits when no node offers Docker.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import grpc
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from corral import convert, jsontext
from corral.cube import CUBE, GOKUBE, CubeError, Dialect, parse_event
from corral.cube_shapes import cube_node, cube_stats, cube_task
from corral.errors import ValidationError
from corral.model import Node, Task
from corral.v1 import manager_pb2
from gateway import upstream
from gateway.errors import UpstreamError
from gateway.openapi import describe, json_content

_SERVICE = "/corral.v1.ManagerService/"
# Corral's field paths in errors, as the Cube user wrote them.
_FIELDS = {
    "id": "Task.ID",
    "spec.name": "Task.Name",
    "spec.image": "Task.Image",
    "spec.resources.cpu": "Task.Cpu",
    "spec.resources.memory_bytes": "Task.Memory",
    "spec.resources.disk_bytes": "Task.Disk",
    "spec.ports": "Task.ExposedPorts",
    "spec.health_check": "Task.HealthCheck",
}


def _error(status: int, message: str, dialect: Dialect = CUBE) -> JSONResponse:
    if message.startswith("json:") or message.startswith("invalid JSON"):
        message = dialect.decode_prefix + message
    return JSONResponse({dialect.status_key: status, "Message": message}, status_code=status)


def _from_upstream(err: UpstreamError, dialect: Dialect) -> JSONResponse:
    message = err.message
    for ours, theirs in _FIELDS.items():
        if message.startswith(ours + ":") or message.startswith(ours + "."):
            message = theirs + message[len(ours) :]
            break
    if dialect is GOKUBE:
        message = message.replace("Task.ExposedPorts", "Task.ExposedPort")
    return _error(err.http_status, message, dialect)


Handler = Callable[[Request], Awaitable[Response]]


def _compat(dialect: Dialect) -> Callable[[Handler], Handler]:
    """Errors in the dialect's shape, whatever raised them."""

    def wrap(handler: Handler) -> Handler:
        async def handle(request: Request) -> Response:
            try:
                return await handler(request)
            except CubeError as err:
                return _error(err.status, err.message, dialect)
            except UpstreamError as err:
                return _from_upstream(err, dialect)

        handle.__name__ = handler.__name__
        handle.__doc__ = handler.__doc__
        return handle

    return wrap


_cube = _compat(CUBE)


# -- handlers ---------------------------------------------------------------------------


async def _task(request: Request, ref: str) -> Task:
    reply = await upstream.unary(
        request,
        _SERVICE + "GetTask",
        manager_pb2.GetTaskRequest(id=ref),
        manager_pb2.GetTaskResponse,
    )
    return convert.task_from(reply.task)


async def _nodes(request: Request) -> list[Node]:
    reply = await upstream.unary(
        request,
        _SERVICE + "ListNodes",
        manager_pb2.ListNodesRequest(),
        manager_pb2.ListNodesResponse,
    )
    return [convert.node_from(n) for n in reply.nodes]


def task_handlers(dialect: Dialect) -> dict[str, Handler]:
    """submit, list, get and stop, answering in ``dialect``'s shapes."""

    @_compat(dialect)
    async def submit_task(request: Request) -> Response:
        """Submit a TaskEvent; 201 with the Task."""
        try:
            data = jsontext.loads(await request.body())
        except ValidationError as err:
            raise CubeError(400, f"invalid JSON: {err.problem}") from None
        task_id, spec = parse_event(data, dialect)
        message = manager_pb2.SubmitTaskRequest(spec=convert.spec_to(spec), id=task_id)
        reply = await upstream.unary(
            request, _SERVICE + "SubmitTask", message, manager_pb2.SubmitTaskResponse
        )
        return JSONResponse(cube_task(convert.task_from(reply.task), dialect), status_code=201)

    @_compat(dialect)
    async def list_tasks(request: Request) -> Response:
        """Every task, newest first, as Tasks."""
        tasks: list[dict[str, Any]] = []
        token = ""
        while True:
            message = manager_pb2.ListTasksRequest(page_size=1000, page_token=token)
            reply = await upstream.unary(
                request, _SERVICE + "ListTasks", message, manager_pb2.ListTasksResponse
            )
            tasks.extend(cube_task(convert.task_from(t), dialect) for t in reply.tasks)
            token = reply.next_page_token
            if not token:
                return JSONResponse(tasks)

    @_compat(dialect)
    async def get_task(request: Request) -> Response:
        """One task as a Task; 404 when unknown."""
        task = await _task(request, request.path_params["id"])
        return JSONResponse(cube_task(task, dialect))

    @_compat(dialect)
    async def stop_task(request: Request) -> Response:
        """Stop a task; 204 (also when it had already ended), 404 when unknown."""
        task = await _task(request, request.path_params["id"])
        reason = f"stopped through the {dialect.name} API"
        message = manager_pb2.StopTaskRequest(id=task.id, reason=reason)
        try:
            await upstream.unary(
                request, _SERVICE + "StopTask", message, manager_pb2.StopTaskResponse
            )
        except UpstreamError as err:
            if err.code is not grpc.StatusCode.FAILED_PRECONDITION:
                raise
        return Response(status_code=204)

    handlers = {"submit": submit_task, "list": list_tasks, "get": get_task, "stop": stop_task}
    _describe(dialect, handlers)
    return handlers


@_cube
async def list_nodes(request: Request) -> Response:
    """Every node as a Cube Node."""
    return JSONResponse([cube_node(n) for n in await _nodes(request)])


@_cube
async def stats(request: Request) -> Response:
    """Cube worker Stats summed over the nodes (CPU is their mean)."""
    nodes = await _nodes(request)
    stats = [n.stats for n in nodes]
    pairs = [(n, n.stats) for n in nodes]
    return JSONResponse(
        cube_stats(
            mem_total=sum(s.memory_total_bytes or n.capacity.memory_bytes for n, s in pairs),
            mem_used=sum(s.memory_used_bytes for s in stats),
            disk_total=sum(s.disk_total_bytes or n.capacity.disk_bytes for n, s in pairs),
            disk_used=sum(s.disk_used_bytes for s in stats),
            cpu=sum(s.cpu_percent for s in stats) / len(stats) if stats else 0.0,
            loads=(
                sum(s.load1 for s in stats),
                sum(s.load5 for s in stats),
                sum(s.load15 for s in stats),
            ),
            task_count=sum(n.task_count for n in nodes),
        )
    )


_STRING = {"type": "string"}
_INT = {"type": "integer"}
_PORTS = {"type": "object", "nullable": True, "additionalProperties": True}
_TYPES: dict[str, Any] = {
    "ID": {"type": "string", "format": "uuid"},
    "State": {"type": "integer", "minimum": 0, "maximum": 4},
    "Cpu": {"type": "number"},
    "Memory": _INT,
    "Disk": _INT,
    "ExposedPorts": _PORTS,
    "ExposedPort": _PORTS,
    "HostPorts": _PORTS,
    "PortBindings": _PORTS,
    "StartTime": {"type": "string", "format": "date-time"},
    "FinishTime": {"type": "string", "format": "date-time"},
    "RestartCount": _INT,
}
_OBJECT = {"type": "object", "additionalProperties": True}


def _describe(dialect: Dialect, handlers: Mapping[str, Handler]) -> None:
    task: dict[str, Any] = {
        "type": "object",
        "description": f"{dialect.name}'s task.Task",
        "properties": {name: _TYPES.get(name, _STRING) for name in dialect.task_fields},
    }
    event = {
        "type": "object",
        "description": f"{dialect.name}'s task.TaskEvent",
        "required": ["Task"],
        "properties": {
            "ID": {"type": "string", "format": "uuid"},
            "State": {"type": "integer", "minimum": 0, "maximum": 4},
            "Timestamp": {"type": "string", "format": "date-time"},
            "Task": task,
        },
    }
    error = json_content(
        {"type": "object", "properties": {dialect.status_key: _INT, "Message": _STRING}},
        "An error",
    )
    describe(
        handlers["submit"],
        requestBody={"required": True, "content": {"application/json": {"schema": event}}},
        responses={"201": json_content(task, "The task"), "400": error, "409": error},
    )
    describe(handlers["list"], responses={"200": json_content({"type": "array", "items": task})})
    describe(handlers["get"], responses={"200": json_content(task), "404": error})
    describe(handlers["stop"], responses={"204": {"description": "Stopped"}, "404": error})


describe(list_nodes, responses={"200": json_content({"type": "array", "items": _OBJECT})})
describe(stats, responses={"200": json_content(_OBJECT)})


def routes() -> list[BaseRoute]:
    out: list[BaseRoute] = []
    for base, dialect in (("/tasks", CUBE), ("/task", GOKUBE)):
        handlers = task_handlers(dialect)
        out += [
            Route(base, handlers["submit"], methods=["POST"]),
            Route(base, handlers["list"], methods=["GET"]),
            Route(base + "/{id}", handlers["get"], methods=["GET"]),
            Route(base + "/{id}", handlers["stop"], methods=["DELETE"]),
        ]
    out += [
        Route("/nodes", list_nodes, methods=["GET"]),
        Route("/stats", stats, methods=["GET"]),
    ]
    return out
