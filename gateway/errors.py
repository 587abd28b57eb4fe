"""gRPC status → HTTP, and the error bodies the gateway answers with.

One table maps every gRPC code to an HTTP status (the canonical mapping used
by grpc-gateway and Google APIs), and ``UpstreamError`` carries a failed call
(code, message and the rich ``google.rpc.Status`` details the servers attach
in ``grpc-status-details-bin``) to whichever route renders it: canonical
routes as ``google.rpc.Status`` JSON, compatible routes in their origin's shape.
"""

from __future__ import annotations

from typing import Any

import grpc
from google.protobuf import json_format

# Importing error_details_pb2 also registers the detail types JSON rendering needs.
from google.rpc import error_details_pb2, status_pb2
from starlette.responses import JSONResponse

HTTP_STATUS: dict[grpc.StatusCode, int] = {
    grpc.StatusCode.OK: 200,
    grpc.StatusCode.CANCELLED: 499,
    grpc.StatusCode.UNKNOWN: 500,
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.FAILED_PRECONDITION: 400,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.INTERNAL: 500,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DATA_LOSS: 500,
    grpc.StatusCode.UNAUTHENTICATED: 401,
}

# Plain HTTP failures that never reached the manager, as the gRPC code whose
# HTTP status they share (so their body is a google.rpc.Status too).
CODE_OF_HTTP: dict[int, grpc.StatusCode] = {
    400: grpc.StatusCode.INVALID_ARGUMENT,
    404: grpc.StatusCode.NOT_FOUND,
    405: grpc.StatusCode.UNIMPLEMENTED,
    413: grpc.StatusCode.RESOURCE_EXHAUSTED,
}

_DETAILS_KEY = "grpc-status-details-bin"


class UpstreamError(Exception):
    """A call the gateway could not complete, with its gRPC status."""

    def __init__(
        self, code: grpc.StatusCode, message: str, details: status_pb2.Status | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details

    @property
    def http_status(self) -> int:
        return HTTP_STATUS.get(self.code, 500)

    @classmethod
    def from_rpc(cls, err: grpc.aio.AioRpcError) -> UpstreamError:
        rich: status_pb2.Status | None = None
        for key, value in err.trailing_metadata() or ():
            if key == _DETAILS_KEY and isinstance(value, bytes):
                rich = status_pb2.Status.FromString(value)
        return cls(err.code(), err.details() or err.code().name.lower(), rich)

    def field(self) -> str:
        """The field a BadRequest detail names, or '' (compatible bodies quote it)."""
        for violation in self.violations():
            return str(violation.get("field", ""))
        return ""

    def violations(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for detail in self.details.details if self.details is not None else ():
            bad = error_details_pb2.BadRequest()
            if detail.Unpack(bad):
                out.extend(
                    {"field": v.field, "description": v.description} for v in bad.field_violations
                )
        return out

    def status_json(self) -> dict[str, Any]:
        """The ``google.rpc.Status`` JSON body of canonical routes."""
        details: list[Any] = []
        if self.details is not None:
            for detail in self.details.details:
                try:
                    details.append(json_format.MessageToDict(detail))
                except (json_format.SerializeToJsonError, TypeError, KeyError):
                    # A detail type this gateway does not know: keep it opaque.
                    details.append({"@type": detail.type_url})
        return {"code": self.code.value[0], "message": self.message, "details": details}


def bad_request(field: str, problem: str) -> UpstreamError:
    """Input the gateway refuses itself, named like the servers name fields."""
    status = status_pb2.Status(code=grpc.StatusCode.INVALID_ARGUMENT.value[0])
    status.details.add().Pack(
        error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(field=field, description=problem)
            ]
        )
    )
    message = f"{field}: {problem}" if field else problem
    status.message = message
    return UpstreamError(grpc.StatusCode.INVALID_ARGUMENT, message, status)


def status_response(err: UpstreamError) -> JSONResponse:
    return JSONResponse(err.status_json(), status_code=err.http_status)
