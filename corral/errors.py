"""Domain errors, shared by servers and the client.

Plain exceptions, free of gRPC: ``corral.statuses`` holds the one table of
their status codes, which servers use to turn an error into a status and the
client to turn a status back into the same class. A ``ValidationError``
names the offending field, which travels as a ``google.rpc.BadRequest``
field violation.
"""

from __future__ import annotations


class CorralError(Exception):
    """Base of every error Corral raises on purpose."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ValidationError(CorralError):
    """Bad input; ``field`` is the dotted path of the offending field."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


class NotFound(CorralError):
    """The named thing does not exist."""


class AlreadyExists(CorralError):
    """A thing of that name or id exists already."""


class FailedPrecondition(CorralError):
    """The request is valid but the state does not allow it (a final task, a running schedule)."""


class Conflict(CorralError):
    """The operation raced another one or the resource is busy (ABORTED)."""


class Unavailable(CorralError):
    """The server (or what it depends on) cannot be reached now; worth a retry."""


class DeadlineExceeded(CorralError):
    """The answer did not come in time."""


class PermissionDenied(CorralError):
    """The caller is known but may not do this."""


class Unauthenticated(CorralError):
    """The caller did not prove who it is."""


class ResourceExhausted(CorralError):
    """A limit was reached (sizes, rates, capacity)."""
