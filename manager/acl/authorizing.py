"""Who may call what: one table (``RULES``) and the interceptor that applies it.

``Authorizer`` runs before every RPC when the manager has ``--acl``. It reads
``authorization: Bearer <secret>``, finds the token (``manager.acl``), and
either refuses the call (UNAUTHENTICATED: missing, unknown or revoked token;
PERMISSION_DENIED: the role lacks the permission) or runs the handler with
the caller set (``manager.acl.caller()``), which servicers use for
namespaces, node identity and the actor of events.

An RPC missing from ``RULES`` is admin-only: a method someone adds later is
closed until it is classified, never open by accident.

Streams end when their token is revoked: a watcher cancels the RPC's task
and the handler ends it with UNAUTHENTICATED. Unary calls need no watcher;
a revoked token is refused at its next call.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

import grpc

from corral.tls import peer_identity
from manager.acl.tokens import Permission, Principal, Tokens, caller, set_caller

READ, SUBMIT, OPERATE, TOKENS, CONNECT = (
    Permission.READ,
    Permission.SUBMIT,
    Permission.OPERATE,
    Permission.TOKENS,
    Permission.CONNECT,
)
PUBLIC = None
UNLISTED = Permission.TOKENS  # only admins may call an RPC nobody classified

_M, _J, _S, _E, _A = (
    "/corral.v1.ManagerService/",
    "/corral.v1.JobService/",
    "/corral.v1.ScheduleService/",
    "/corral.v1.EnvironmentService/",
    "/corral.v1.AclService/",
)
RULES: Mapping[str, Permission | None] = {
    _M + "SubmitTask": SUBMIT,
    _M + "SubmitTasks": SUBMIT,
    _M + "GetTask": READ,
    _M + "ListTasks": READ,
    _M + "StopTask": SUBMIT,
    _M + "WatchEvents": READ,
    _M + "GetTaskLogs": READ,
    _M + "GetLogs": READ,
    _M + "ListNodes": READ,
    _M + "GetNode": READ,
    _M + "ExplainTask": READ,
    _M + "ListTaskAttempts": READ,
    _M + "DrainNode": OPERATE,
    _M + "UndrainNode": OPERATE,
    _M + "Connect": CONNECT,
    _J + "RunJob": SUBMIT,
    _J + "GetJob": READ,
    _J + "ListJobs": READ,
    _J + "GetJobLogs": READ,
    _S + "CreateSchedule": OPERATE,
    _S + "GetSchedule": READ,
    _S + "ListSchedules": READ,
    _S + "DeleteSchedule": OPERATE,
    _S + "StartSchedule": OPERATE,
    _S + "StopSchedule": OPERATE,
    _S + "RunScheduleOnce": SUBMIT,
    _S + "ListRuns": READ,
    _S + "GetRun": READ,
    _E + "StartEnvironment": SUBMIT,
    _E + "StopEnvironment": SUBMIT,
    _E + "GetEnvironment": READ,
    _E + "ListEnvironments": READ,
    _A + "Bootstrap": PUBLIC,
    _A + "CreateToken": TOKENS,
    _A + "ListTokens": TOKENS,
    _A + "RevokeToken": TOKENS,
    # Load balancers and grpcurl need no token to ask whether a server is up.
    "/grpc.health.v1.Health/Check": PUBLIC,
    "/grpc.health.v1.Health/Watch": PUBLIC,
    "/grpc.health.v1.Health/List": PUBLIC,
    "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo": PUBLIC,
    "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo": PUBLIC,
}


def permission_of(method: str) -> Permission | None:
    return RULES.get(method, UNLISTED)


def bearer_of(metadata: Any) -> str:
    """The secret of ``authorization: Bearer <secret>``; empty when absent or malformed."""
    for key, value in metadata or ():
        if key == "authorization" and isinstance(value, str):
            scheme, _, secret = value.partition(" ")
            if scheme.lower() == "bearer":
                return secret.strip()
    return ""


def credential_of(context: Any) -> str:
    """What a node id is bound to: the token's name, else the client certificate's name."""
    principal = caller()
    if principal.name:
        return f"token:{principal.name}"
    identity = peer_identity(context.auth_context())
    return f"cert:{identity}" if identity else ""


# Handlers wrapped per (principal, method) are kept: building one per call (closures,
# functools.wraps) was most of the interceptor's cost on a busy manager.
WRAPPED_LIMIT = 10_000


class Authorizer(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    def __init__(self, tokens: Tokens) -> None:
        self.tokens = tokens
        self._wrapped: dict[tuple[Principal, str], Any] = {}

    async def intercept_service(
        self,
        continuation: Callable[[Any], Awaitable[Any]],
        details: Any,
    ) -> Any:
        handler = await continuation(details)
        if handler is None:
            return None
        permission = permission_of(details.method)
        if permission is PUBLIC:
            return handler
        secret = bearer_of(details.invocation_metadata)
        principal = self.tokens.authenticate(secret) if secret else None
        if principal is None:
            why = "unknown or revoked token" if secret else "missing token"
            return _refused(
                handler,
                grpc.StatusCode.UNAUTHENTICATED,
                f"{why}: send 'authorization: Bearer <token>' (corral --token / CORRAL_TOKEN)",
            )
        if not principal.may(permission):
            return _refused(
                handler,
                grpc.StatusCode.PERMISSION_DENIED,
                f"token {principal.name!r} (role {principal.role}) may not call"
                f" {details.method.rsplit('/', 1)[-1]}",
            )
        key = (principal, details.method)
        wrapped = self._wrapped.get(key)
        if wrapped is None:
            if len(self._wrapped) >= WRAPPED_LIMIT:
                self._wrapped.clear()
            wrapped = self._wrapped[key] = _as(principal, handler)
        return wrapped


def _refused(handler: Any, code: grpc.StatusCode, message: str) -> Any:
    async def refuse(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> None:
        await context.abort(code, message)

    kind = _kind(handler)
    return handler._replace(**{kind: refuse})


def _kind(handler: Any) -> str:
    if handler.request_streaming:
        return "stream_stream" if handler.response_streaming else "stream_unary"
    return "unary_stream" if handler.response_streaming else "unary_unary"


def _as(principal: Principal, handler: Any) -> Any:
    """``handler`` run as ``principal``; its streams end when the token is revoked."""
    kind = _kind(handler)
    behavior = getattr(handler, kind)
    if not handler.response_streaming and not handler.request_streaming:

        @functools.wraps(behavior)
        async def unary(request: Any, context: Any) -> Any:
            set_caller(principal)
            return await behavior(request, context)

        return handler._replace(unary_unary=unary)
    if handler.response_streaming and _is_generator(behavior):

        @functools.wraps(behavior)
        async def stream(request: Any, context: Any) -> AsyncIterator[Any]:
            set_caller(principal)
            with _Revocation(principal) as revocation:
                try:
                    async for item in behavior(request, context):
                        yield item
                except asyncio.CancelledError:
                    await revocation.abort_if_revoked(context)
                    raise

        return handler._replace(**{kind: stream})

    @functools.wraps(behavior)
    async def coroutine(request: Any, context: Any) -> Any:
        set_caller(principal)
        with _Revocation(principal) as revocation:
            try:
                return await behavior(request, context)
            except asyncio.CancelledError:
                await revocation.abort_if_revoked(context)
                raise

    return handler._replace(**{kind: coroutine})


def _is_generator(behavior: Any) -> bool:
    import inspect

    return inspect.isasyncgenfunction(behavior)


class _Revocation:
    """Cancels the current task when ``principal``'s token is revoked."""

    def __init__(self, principal: Principal) -> None:
        self.principal = principal
        self.fired = False
        self._watcher: asyncio.Task[None] | None = None

    def __enter__(self) -> _Revocation:
        task = asyncio.current_task()
        assert task is not None

        async def watch() -> None:
            await self.principal.revoked.wait()
            self.fired = True
            task.cancel()

        self._watcher = asyncio.get_running_loop().create_task(watch())
        return self

    def __exit__(self, *exc: object) -> None:
        if self._watcher is not None:
            self._watcher.cancel()

    async def abort_if_revoked(self, context: Any) -> None:
        if not self.fired:
            return
        task = asyncio.current_task()
        if task is not None:
            task.uncancel()
        await context.abort(
            grpc.StatusCode.UNAUTHENTICATED, f"token {self.principal.name!r} was revoked"
        )
