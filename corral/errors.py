"""Domain errors, shared by servers and the client.

Each error knows its gRPC status code, so servers turn it into a status in one
place (``corral.serving``) and the client turns a status back into the same
class (``corral.client``). A ``ValidationError`` names the offending field,
which travels as a ``google.rpc.BadRequest`` field violation.
"""

from __future__ import annotations

import grpc


class CorralError(Exception):
    """Base of every error Corral raises on purpose."""

    code: grpc.StatusCode = grpc.StatusCode.INTERNAL

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ValidationError(CorralError):
    """Bad input; ``field`` is the dotted path of the offending field."""

    code = grpc.StatusCode.INVALID_ARGUMENT

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


class NotFound(CorralError):
    code = grpc.StatusCode.NOT_FOUND


class AlreadyExists(CorralError):
    code = grpc.StatusCode.ALREADY_EXISTS


class FailedPrecondition(CorralError):
    code = grpc.StatusCode.FAILED_PRECONDITION


class Conflict(CorralError):
    """The operation raced another one or the resource is busy (ABORTED)."""

    code = grpc.StatusCode.ABORTED


class Unavailable(CorralError):
    code = grpc.StatusCode.UNAVAILABLE


class DeadlineExceeded(CorralError):
    code = grpc.StatusCode.DEADLINE_EXCEEDED


class PermissionDenied(CorralError):
    code = grpc.StatusCode.PERMISSION_DENIED


class Unauthenticated(CorralError):
    code = grpc.StatusCode.UNAUTHENTICATED


class ResourceExhausted(CorralError):
    code = grpc.StatusCode.RESOURCE_EXHAUSTED


ERRORS_BY_CODE: dict[grpc.StatusCode, type[CorralError]] = {
    cls.code: cls
    for cls in (
        ValidationError,
        NotFound,
        AlreadyExists,
        FailedPrecondition,
        Conflict,
        Unavailable,
        DeadlineExceeded,
        PermissionDenied,
        Unauthenticated,
        ResourceExhausted,
    )
}
