"""The .NET cron orchestrator's routes, on the schedule named ``default``.

``GET /api/cronjob/status|start|stop|run-once`` answer with the original's
bodies and codes: start while running and stop while not running are 400,
run-once while the loop runs is 409, and run-once answers only after the run
has finished (whatever its endpoints answered, as the original did: the run
itself, with every response, is at ``/v1/schedules/default/runs``). Without a
``default`` schedule (no ``--schedules`` file and no health URL) the routes
say so with a 404 instead of pretending.
"""

from __future__ import annotations

from typing import Any

import grpc
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from corral.v1 import schedules_pb2 as pb
from corral.v1.schedules_pb2_grpc import ScheduleServiceStub
from gateway import upstream

DEFAULT = "default"
CALL_TIMEOUT = 10.0
# run-once waits for the run: endpoints' timeouts plus time to place their tasks.
RUN_TIMEOUT = 600.0

_STATUS_TEXT = {
    pb.SCHEDULE_STATE_IDLE: "Idle",
    pb.SCHEDULE_STATE_RUNNING: "Running",
    pb.SCHEDULE_STATE_STOPPED: "Stopped",
}
_HTTP = {
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.FAILED_PRECONDITION: 400,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.PERMISSION_DENIED: 403,
}
_NO_DEFAULT = (
    "No schedule named 'default': start the manager with --schedules FILE "
    "(YAML, JSON or appsettings.json), or create one with `corral schedule create`"
)


def _stub(request: Request) -> ScheduleServiceStub:
    return ScheduleServiceStub(request.app.state.channel)


def _message(text: str, status: int = 200) -> JSONResponse:
    return JSONResponse({"message": text}, status_code=status)


def _error(err: grpc.aio.AioRpcError, overrides: dict[grpc.StatusCode, str]) -> JSONResponse:
    code = err.code()
    if code is grpc.StatusCode.NOT_FOUND:
        return _message(_NO_DEFAULT, 404)
    text = overrides.get(code) or err.details() or code.name
    return _message(text, _HTTP.get(code, 500))


async def status(request: Request) -> JSONResponse:
    """{"status": "Idle" | "Running" | "Stopped"} of the default schedule."""
    try:
        reply: Any = await _stub(request).GetSchedule(
            pb.GetScheduleRequest(name=DEFAULT),
            timeout=CALL_TIMEOUT,
            metadata=upstream.metadata_of(request),
        )
    except grpc.aio.AioRpcError as err:
        return _error(err, {})
    return JSONResponse({"status": _STATUS_TEXT.get(reply.schedule.status.state, "Idle")})


async def start(request: Request) -> JSONResponse:
    """Start the loop; 400 when it is already running."""
    try:
        await _stub(request).StartSchedule(
            pb.StartScheduleRequest(name=DEFAULT),
            timeout=CALL_TIMEOUT,
            metadata=upstream.metadata_of(request),
        )
    except grpc.aio.AioRpcError as err:
        return _error(err, {grpc.StatusCode.FAILED_PRECONDITION: "CronJob is already running"})
    return _message("CronJob started successfully")


async def stop(request: Request) -> JSONResponse:
    """Stop the loop and cancel the run in progress; 400 when it is not running."""
    try:
        await _stub(request).StopSchedule(
            pb.StopScheduleRequest(name=DEFAULT),
            timeout=CALL_TIMEOUT,
            metadata=upstream.metadata_of(request),
        )
    except grpc.aio.AioRpcError as err:
        return _error(err, {grpc.StatusCode.FAILED_PRECONDITION: "CronJob is not running"})
    return _message("CronJob stopped successfully")


async def run_once(request: Request) -> JSONResponse:
    """Run the endpoints once and answer when the run is over; 409 while the loop runs."""
    try:
        await _stub(request).RunScheduleOnce(
            pb.RunScheduleOnceRequest(name=DEFAULT),
            timeout=RUN_TIMEOUT,
            metadata=upstream.metadata_of(request),
        )
    except grpc.aio.AioRpcError as err:
        conflict = "Job could not run because CronJob is already running"
        return _error(err, {grpc.StatusCode.ABORTED: conflict})
    return _message("Job executed successfully")


def routes() -> list[BaseRoute]:
    return [
        Route("/api/cronjob/status", status, methods=["GET"]),
        Route("/api/cronjob/start", start, methods=["GET"]),
        Route("/api/cronjob/stop", stop, methods=["GET"]),
        Route("/api/cronjob/run-once", run_once, methods=["GET"]),
    ]
