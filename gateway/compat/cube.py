"""The Cube routes (*Build an Orchestrator in Go*) and gokube's singular twins.

``POST /tasks`` takes a Cube TaskEvent and answers 201 with the Task;
``GET /tasks``, ``GET /tasks/{id}``, ``DELETE /tasks/{id}`` (204, stops it);
``GET /nodes`` and ``GET /stats`` (the nodes' Stats summed, CPU their mean).
gokube serves the same under ``/task``. Errors are Cube's
``{"HTTPStatusCode": 400, "Message": ...}``; the JSON shapes and the
translation choices are in ``gateway.compat.cube_shapes``. The manager
decides where a task runs and says why it waits when no node offers Docker.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from corral import convert
from corral.model import Node, Task
from corral.v1 import manager_pb2
from gateway import upstream
from gateway.compat.cube_shapes import CubeError, cube_node, cube_stats, cube_task, parse_event
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


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"HTTPStatusCode": status, "Message": message}, status_code=status)


def _from_upstream(err: UpstreamError) -> JSONResponse:
    message = err.message
    for ours, theirs in _FIELDS.items():
        if message.startswith(ours + ":") or message.startswith(ours + "."):
            message = theirs + message[len(ours) :]
            break
    return _error(err.http_status, message)


Handler = Callable[[Request], Awaitable[Response]]


def _cube(handler: Handler) -> Handler:
    """Errors in Cube's shape, whatever raised them."""

    async def handle(request: Request) -> Response:
        try:
            return await handler(request)
        except CubeError as err:
            return _error(err.status, err.message)
        except UpstreamError as err:
            return _from_upstream(err)

    handle.__name__ = handler.__name__
    handle.__doc__ = handler.__doc__
    return handle


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


@_cube
async def submit_task(request: Request) -> Response:
    """Submit a Cube TaskEvent; 201 with the Task."""
    try:
        data = json.loads(await request.body())
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise CubeError(400, f"invalid JSON: {err}") from None
    task_id, spec = parse_event(data)
    message = manager_pb2.SubmitTaskRequest(spec=convert.spec_to(spec), id=task_id)
    reply = await upstream.unary(
        request, _SERVICE + "SubmitTask", message, manager_pb2.SubmitTaskResponse
    )
    return JSONResponse(cube_task(convert.task_from(reply.task)), status_code=201)


@_cube
async def list_tasks(request: Request) -> Response:
    """Every task, newest first, as Cube Tasks."""
    tasks: list[dict[str, Any]] = []
    token = ""
    while True:
        message = manager_pb2.ListTasksRequest(page_size=1000, page_token=token)
        reply = await upstream.unary(
            request, _SERVICE + "ListTasks", message, manager_pb2.ListTasksResponse
        )
        tasks.extend(cube_task(convert.task_from(t)) for t in reply.tasks)
        token = reply.next_page_token
        if not token:
            return JSONResponse(tasks)


@_cube
async def get_task(request: Request) -> Response:
    """One task as a Cube Task; 404 when unknown."""
    return JSONResponse(cube_task(await _task(request, request.path_params["id"])))


@_cube
async def stop_task(request: Request) -> Response:
    """Stop a task; 204 (also when it had already ended), 404 when unknown."""
    task = await _task(request, request.path_params["id"])
    message = manager_pb2.StopTaskRequest(id=task.id, reason="stopped through the Cube API")
    try:
        await upstream.unary(request, _SERVICE + "StopTask", message, manager_pb2.StopTaskResponse)
    except UpstreamError as err:
        if err.code is not grpc.StatusCode.FAILED_PRECONDITION:
            raise
    return Response(status_code=204)


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
_TASK_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "Cube's task.Task",
    "properties": {
        "ID": {"type": "string", "format": "uuid"},
        "ContainerID": _STRING,
        "Name": _STRING,
        "State": {"type": "integer", "minimum": 0, "maximum": 4},
        "Image": _STRING,
        "Cpu": {"type": "number"},
        "Memory": _INT,
        "Disk": _INT,
        "ExposedPorts": _PORTS,
        "HostPorts": _PORTS,
        "PortBindings": _PORTS,
        "RestartPolicy": _STRING,
        "StartTime": {"type": "string", "format": "date-time"},
        "FinishTime": {"type": "string", "format": "date-time"},
        "HealthCheck": _STRING,
        "RestartCount": _INT,
    },
}
_EVENT_SCHEMA = {
    "type": "object",
    "description": "Cube's task.TaskEvent",
    "required": ["Task"],
    "properties": {
        "ID": {"type": "string", "format": "uuid"},
        "State": {"type": "integer", "minimum": 0, "maximum": 4},
        "Timestamp": {"type": "string", "format": "date-time"},
        "Task": _TASK_SCHEMA,
    },
}
_ERROR = json_content(
    {"type": "object", "properties": {"HTTPStatusCode": _INT, "Message": _STRING}}, "An error"
)
_OBJECT = {"type": "object", "additionalProperties": True}
describe(
    submit_task,
    requestBody={"required": True, "content": {"application/json": {"schema": _EVENT_SCHEMA}}},
    responses={"201": json_content(_TASK_SCHEMA, "The task"), "400": _ERROR, "409": _ERROR},
)
describe(list_tasks, responses={"200": json_content({"type": "array", "items": _TASK_SCHEMA})})
describe(get_task, responses={"200": json_content(_TASK_SCHEMA), "404": _ERROR})
describe(stop_task, responses={"204": {"description": "Stopped"}, "404": _ERROR})
describe(list_nodes, responses={"200": json_content({"type": "array", "items": _OBJECT})})
describe(stats, responses={"200": json_content(_OBJECT)})


def routes() -> list[BaseRoute]:
    out: list[BaseRoute] = []
    for base in ("/tasks", "/task"):  # Cube, gokube
        out += [
            Route(base, submit_task, methods=["POST"]),
            Route(base, list_tasks, methods=["GET"]),
            Route(base + "/{id}", get_task, methods=["GET"]),
            Route(base + "/{id}", stop_task, methods=["DELETE"]),
        ]
    out += [
        Route("/nodes", list_nodes, methods=["GET"]),
        Route("/stats", stats, methods=["GET"]),
    ]
    return out
