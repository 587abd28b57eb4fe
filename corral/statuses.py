"""gRPC statuses <-> domain errors: the one table, read in both directions.

``corral.errors`` knows nothing of gRPC, so the scheduler, the runtimes and
every other domain module raise and catch them without loading grpc. Servers
turn a raised ``CorralError`` into a rich ``google.rpc.Status`` here
(``error_status``, used by ``corral.serving.translate_errors``); the client
turns a failed call back into the same class here (``error_from``), and a
``ValidationError`` gets its field back from the ``google.rpc.BadRequest``
detail the server attached.
"""

from __future__ import annotations

from typing import cast

import grpc
from google.protobuf import any_pb2
from google.protobuf.message import DecodeError
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from corral.errors import (
    AlreadyExists,
    Conflict,
    CorralError,
    DeadlineExceeded,
    FailedPrecondition,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    Unauthenticated,
    Unavailable,
    ValidationError,
)

CODES: dict[type[CorralError], grpc.StatusCode] = {
    ValidationError: grpc.StatusCode.INVALID_ARGUMENT,
    NotFound: grpc.StatusCode.NOT_FOUND,
    AlreadyExists: grpc.StatusCode.ALREADY_EXISTS,
    FailedPrecondition: grpc.StatusCode.FAILED_PRECONDITION,
    Conflict: grpc.StatusCode.ABORTED,
    Unavailable: grpc.StatusCode.UNAVAILABLE,
    DeadlineExceeded: grpc.StatusCode.DEADLINE_EXCEEDED,
    PermissionDenied: grpc.StatusCode.PERMISSION_DENIED,
    Unauthenticated: grpc.StatusCode.UNAUTHENTICATED,
    ResourceExhausted: grpc.StatusCode.RESOURCE_EXHAUSTED,
}
ERRORS_BY_CODE: dict[grpc.StatusCode, type[CorralError]] = {v: k for k, v in CODES.items()}
_DETAILS_KEY = "grpc-status-details-bin"
# Error messages travel in trailers (grpc-message and the status details, base64):
# together they must stay far below grpc's 16 KiB metadata limit.
MAX_ERROR_CHARS = 1024


class RemoteError(CorralError):
    """A failed call whose status has no domain class (DATA_LOSS, INTERNAL, ...)."""

    def __init__(self, message: str, code: grpc.StatusCode) -> None:
        super().__init__(message)
        self.code = code


def code_of(err: CorralError) -> grpc.StatusCode:
    """The status a domain error travels as; subclasses inherit their base's (else INTERNAL)."""
    if isinstance(err, RemoteError):
        return err.code
    for cls in type(err).__mro__:
        code = CODES.get(cls)
        if code is not None:
            return code
    return grpc.StatusCode.INTERNAL


# -- the servicer side ------------------------------------------------------------


def bounded(text: str, limit: int = MAX_ERROR_CHARS) -> str:
    """Error text cut to ``limit`` characters: it travels in metadata, which has a size
    limit, and it may echo what the caller sent (a 10,000-character id came back as 429)."""
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def error_status(err: CorralError) -> grpc.Status:
    """A domain error as a rich status (details travel in grpc-status-details-bin)."""
    status = status_pb2.Status(code=code_of(err).value[0], message=bounded(err.message))
    if isinstance(err, ValidationError):
        detail = any_pb2.Any()
        detail.Pack(
            error_details_pb2.BadRequest(
                field_violations=[
                    error_details_pb2.BadRequest.FieldViolation(
                        field=bounded(err.field, 256), description=bounded(err.problem)
                    )
                ]
            )
        )
        status.details.append(detail)
    return cast(grpc.Status, rpc_status.to_status(status))


# -- the client side ----------------------------------------------------------------


def error_from(err: grpc.RpcError) -> CorralError:
    """The domain exception for a failed call (the client's one translation point)."""
    code: grpc.StatusCode = err.code() if hasattr(err, "code") else grpc.StatusCode.UNKNOWN
    message: str = (err.details() if hasattr(err, "details") else None) or str(code)
    cls = ERRORS_BY_CODE.get(code)
    if cls is ValidationError:
        field, problem = _field_violation(err) or _field_from_message(message)
        return ValidationError(field, problem)
    if cls is None:
        return RemoteError(message, code)
    return cls(message)


def _field_violation(err: grpc.RpcError) -> tuple[str, str] | None:
    """The first BadRequest field violation in the rich status, if the server sent one."""
    metadata = err.trailing_metadata() if hasattr(err, "trailing_metadata") else None
    for key, value in metadata or ():
        if key != _DETAILS_KEY or not isinstance(value, bytes):
            continue
        status = status_pb2.Status()
        try:
            status.ParseFromString(value)
        except DecodeError:
            return None
        for detail in status.details:
            bad = error_details_pb2.BadRequest()
            if detail.Unpack(bad) and bad.field_violations:
                violation = bad.field_violations[0]
                return violation.field, violation.description
    return None


def _field_from_message(message: str) -> tuple[str, str]:
    # Servers without rich status still say "field: problem" (ValidationError's own format).
    field, sep, problem = message.partition(": ")
    return (field, problem) if sep and " " not in field else ("", message)
