"""The Kubernetes Job API project's routes, over Corral's JobService.

``GET /`` is its liveness answer; ``POST /jobs {"cmd"}`` runs ``sh -c cmd``
to completion on the manager's jobs runtime (the default command is the
original's ``echo launched; sleep 10; echo done``) and answers the job in the
shape the original returned, the Kubernetes Python client's ``V1Job.to_dict()``
(snake_case, null where Kubernetes leaves a field unset, times as
``2022-05-28T15:46:58+00:00``). ``GET /jobs`` lists ``{"job": name, ...status}``,
``GET /jobs/{job}/status`` is the batch/v1 status, ``GET /jobs/{job}/logs``
the output as text/plain, kept after the job ends. An unknown job is 404
``{"detail": "Job not found"}`` as FastAPI's HTTPException wrote it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
from google.protobuf.timestamp_pb2 import Timestamp
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from corral import jsontext
from corral.errors import ValidationError
from corral.v1 import jobs_pb2
from gateway import upstream
from gateway.errors import UpstreamError
from gateway.openapi import describe, json_content

_SERVICE = "/corral.v1.JobService/"
NAMESPACE = "corral"
MAX_LOG_BYTES = 16 << 20
DEFAULT_CMD = "echo launched; sleep 10; echo done"  # the manager's default, for the docs

Handler = Callable[[Request], Awaitable[Response]]


def _detail(status: int, detail: Any) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status)


def _original(handler: Handler) -> Handler:
    """Errors as the original (FastAPI) wrote them."""

    async def handle(request: Request) -> Response:
        try:
            return await handler(request)
        except UpstreamError as err:
            if err.code is grpc.StatusCode.NOT_FOUND:
                return _detail(404, "Job not found")
            return _detail(err.http_status, err.message)

    handle.__name__ = handler.__name__
    handle.__doc__ = handler.__doc__
    return handle


def k8s_time(ts: Timestamp, present: bool) -> str | None:
    if not present:
        return None
    moment = dt.datetime.fromtimestamp(ts.seconds, dt.UTC)
    return moment.isoformat()


def job_status(job: jobs_pb2.Job) -> dict[str, Any]:
    s = job.status
    return {
        "active": s.active or None,
        "completed_indexes": None,
        "completion_time": k8s_time(s.completion_time, s.HasField("completion_time")),
        "conditions": [
            {
                "last_probe_time": k8s_time(c.last_probe_time, c.HasField("last_probe_time")),
                "last_transition_time": k8s_time(
                    c.last_transition_time, c.HasField("last_transition_time")
                ),
                "message": c.message or None,
                "reason": c.reason or None,
                "status": c.status,
                "type": c.type,
            }
            for c in s.conditions
        ]
        or None,
        "failed": s.failed or None,
        "ready": None,
        "start_time": k8s_time(s.start_time, s.HasField("start_time")),
        "succeeded": s.succeeded or None,
        "uncounted_terminated_pods": None,
    }


def v1_job(job: jobs_pb2.Job) -> dict[str, Any]:
    """The job as ``V1Job.to_dict()`` wrote it."""
    container: dict[str, Any] = {
        "args": [job.cmd],
        "command": ["sh", "-c"],
        "image": job.image or None,
        "name": f"{job.name}-container",
    }
    return {
        "api_version": "batch/v1",
        "kind": "Job",
        "metadata": {
            "annotations": None,
            "creation_timestamp": k8s_time(job.created_at, job.HasField("created_at")),
            "deletion_timestamp": None,
            "generate_name": None,
            "generation": 1,
            "labels": {"app": "orchestrator", "corral.kind": "job"},
            "name": job.name,
            "namespace": NAMESPACE,
            "uid": job.task_id,
        },
        "spec": {
            "active_deadline_seconds": None,
            "backoff_limit": 0,
            "completions": 1,
            "parallelism": 1,
            "template": {"spec": {"containers": [container], "restart_policy": "Never"}},
            "ttl_seconds_after_finished": None,
        },
        "status": job_status(job),
    }


async def _job(request: Request) -> jobs_pb2.Job:
    message = jobs_pb2.GetJobRequest(name=request.path_params["job"])
    reply = await upstream.unary(request, _SERVICE + "GetJob", message, jobs_pb2.GetJobResponse)
    return reply.job


async def alive(request: Request) -> Response:
    """Liveness: {"status": "alive"}."""
    return JSONResponse({"status": "alive"})


@_original
async def create_job(request: Request) -> Response:
    """Run `sh -c cmd` to completion; answers the job."""
    raw = await request.body()
    try:
        data = jsontext.loads(raw) if raw.strip() else {}
    except ValidationError as err:
        return _detail(400, err.message)
    if not isinstance(data, dict):
        return _detail(400, 'body: must be a JSON object such as {"cmd": "..."}')
    unknown = sorted(set(data) - {"cmd"})
    if unknown:
        return _detail(400, f"{unknown[0]}: unknown field (the body is {{'cmd': '...'}})")
    cmd = data.get("cmd")
    if cmd is not None and not isinstance(cmd, str):
        return _detail(400, "cmd: must be a string")
    message = jobs_pb2.RunJobRequest(cmd=cmd) if cmd is not None else jobs_pb2.RunJobRequest()
    reply = await upstream.unary(request, _SERVICE + "RunJob", message, jobs_pb2.RunJobResponse)
    return JSONResponse(v1_job(reply.job))


@_original
async def list_jobs(request: Request) -> Response:
    """Every job: [{"job": name, ...status}]."""
    reply = await upstream.unary(
        request, _SERVICE + "ListJobs", jobs_pb2.ListJobsRequest(), jobs_pb2.ListJobsResponse
    )
    return JSONResponse([{"job": job.name, **job_status(job)} for job in reply.jobs])


@_original
async def get_job(request: Request) -> Response:
    """One job, as V1Job.to_dict()."""
    return JSONResponse(v1_job(await _job(request)))


@_original
async def get_status(request: Request) -> Response:
    """A job's batch/v1 status."""
    return JSONResponse(job_status(await _job(request)))


@_original
async def get_logs(request: Request) -> Response:
    """A job's output as text/plain (kept after it ends)."""
    message = jobs_pb2.GetJobLogsRequest(name=request.path_params["job"])
    call = await upstream.server_stream(
        request, _SERVICE + "GetJobLogs", message, jobs_pb2.GetJobLogsResponse
    )
    out = bytearray()
    try:
        async for chunk in call:
            out += chunk.data
            if len(out) > MAX_LOG_BYTES:
                del out[: len(out) - MAX_LOG_BYTES]
    except grpc.aio.AioRpcError as err:
        raise UpstreamError.from_rpc(err) from None
    finally:
        call.cancel()
    return PlainTextResponse(out.decode("utf-8", errors="replace"))


_OBJECT = {"type": "object", "additionalProperties": True}
_MISSING = json_content(
    {"type": "object", "properties": {"detail": {"type": "string"}}}, "Job not found"
)
describe(alive, responses={"200": json_content(_OBJECT)})
describe(
    create_job,
    requestBody={
        "required": False,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "properties": {"cmd": {"type": "string", "default": DEFAULT_CMD}},
                    "additionalProperties": False,
                }
            }
        },
    },
    responses={"200": json_content(_OBJECT, "The job (V1Job.to_dict())")},
)
describe(list_jobs, responses={"200": json_content({"type": "array", "items": _OBJECT})})
describe(get_job, responses={"200": json_content(_OBJECT), "404": _MISSING})
describe(get_status, responses={"200": json_content(_OBJECT), "404": _MISSING})
describe(
    get_logs,
    responses={
        "200": {"description": "Output", "content": {"text/plain": {"schema": {"type": "string"}}}},
        "404": _MISSING,
    },
)


def routes() -> list[BaseRoute]:
    return [
        Route("/", alive, methods=["GET"]),
        Route("/jobs", create_job, methods=["POST"]),
        Route("/jobs", list_jobs, methods=["GET"]),
        Route("/jobs/{job}", get_job, methods=["GET"]),
        Route("/jobs/{job}/status", get_status, methods=["GET"]),
        Route("/jobs/{job}/logs", get_logs, methods=["GET"]),
    ]
