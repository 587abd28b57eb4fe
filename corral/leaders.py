"""Finding the leader among several managers, on the client side.

Every client of the manager (``corral.Client`` and so the CLI, the gateway,
workers) takes a comma-separated list of managers (``--manager
a:50051,b:50051,c:50051``, ``CORRAL_MANAGER``). A standby refuses calls
with UNAVAILABLE and names the leader in the ``corral-leader`` trailing
metadata. ``LeaderChannel`` looks like a ``grpc.aio.Channel`` (generated
stubs take it unchanged) and sends each call to the manager it believes
leads; when a call is refused it follows the hint, or tries the next manager
when there is none (an election in progress) or the manager is unreachable.

Only calls that certainly did nothing are sent again here: a standby's
refusal, and a connection that was never made. A call cut off mid-way (the
leader died with it in flight) fails as before, and the caller's own retry
policy decides (``corral.Client`` retries what is safe to repeat); the
channel has moved on to the next manager by then.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

import grpc

from corral.errors import ValidationError
from corral.serving import channel as open_channel

LEADER_METADATA = "corral-leader"
# Without a deadline of its own, a call follows hints for at most this long.
FOLLOW_LIMIT = 10.0
BACKOFF_INITIAL = 0.02
BACKOFF_MAX = 0.25


def parse_targets(value: str | Sequence[str], field: str = "manager") -> tuple[str, ...]:
    """``a:1,b:2`` (or a list) as a tuple of targets; a ValidationError naming ``field``."""
    parts = value.split(",") if isinstance(value, str) else list(value)
    targets = tuple(part.strip() for part in parts if part.strip())
    if not targets:
        raise ValidationError(field, "give at least one manager address (HOST:PORT)")
    for target in targets:
        if any(c.isspace() for c in target):
            raise ValidationError(field, f"{target!r} is not a HOST:PORT address")
    return targets


def leader_hint(err: grpc.RpcError) -> str | None:
    """The leader a standby named when it refused the call ('' = no leader yet); None when
    the call was not refused by a standby."""
    metadata = err.trailing_metadata() if hasattr(err, "trailing_metadata") else None
    for key, value in metadata or ():
        if key == LEADER_METADATA:
            return value if isinstance(value, str) else value.decode()
    return None


def never_sent(err: grpc.RpcError) -> bool:
    """The call failed because no connection could be made, so no manager saw it."""
    details = (err.details() if hasattr(err, "details") else "") or ""
    return err.code() is grpc.StatusCode.UNAVAILABLE and "failed to connect" in details.lower()


class LeaderChannel:
    """A channel over several managers that sends calls to the leader; see the module docs."""

    def __init__(
        self,
        targets: str | Sequence[str],
        *,
        opener: Callable[[str], grpc.aio.Channel] = open_channel,
    ) -> None:
        self.targets = parse_targets(targets)
        self.current = self.targets[0]
        self._opener = opener
        self._channels: dict[str, grpc.aio.Channel] = {}
        self._callables: dict[tuple[str, str, str], Any] = {}

    def __str__(self) -> str:
        return ",".join(self.targets)

    def channel(self, target: str | None = None) -> grpc.aio.Channel:
        """The channel to ``target`` (default: the manager believed to lead)."""
        target = target or self.current
        found = self._channels.get(target)
        if found is None:
            found = self._channels[target] = self._opener(target)
        return found

    def redirect(self, err: grpc.RpcError) -> bool:
        """After a failed call, point at the leader or the next manager.

        True when the call certainly did nothing (refused by a standby, or never
        sent), so sending it again cannot repeat it.
        """
        hint = leader_hint(err)
        if hint is not None:
            if hint and hint != self.current:
                self.current = hint
            else:
                self.next()
            return True
        if err.code() is grpc.StatusCode.UNAVAILABLE:
            self.next()
            return never_sent(err)
        return False

    def next(self) -> None:
        """Try the manager after the current one (the first after a hint's address)."""
        if self.current in self.targets:
            i = self.targets.index(self.current)
            self.current = self.targets[(i + 1) % len(self.targets)]
        else:
            self.current = self.targets[0]

    def _callable(self, kind: str, method: str, kwargs: dict[str, Any]) -> Any:
        key = (self.current, kind, method)
        found = self._callables.get(key)
        if found is None:
            make = getattr(self.channel(), kind)
            found = self._callables[key] = make(method, **kwargs)
        return found

    # -- what grpc.aio.Channel offers the generated stubs --------------------------

    def unary_unary(self, method: str, **kwargs: Any) -> _Unary:
        return _Unary(self, method, kwargs)

    def unary_stream(self, method: str, **kwargs: Any) -> _Streaming:
        return _Streaming(self, method, kwargs)

    def stream_unary(self, method: str, **kwargs: Any) -> Any:
        return _Rebinding(self, "stream_unary", method, kwargs)

    def stream_stream(self, method: str, **kwargs: Any) -> Any:
        """A bidirectional call to the current manager (its owner follows on failure)."""
        return _Rebinding(self, "stream_stream", method, kwargs)

    def get_state(self, try_to_connect: bool = False) -> grpc.ChannelConnectivity:
        return self.channel().get_state(try_to_connect)

    async def wait_for_state_change(self, last_observed_state: grpc.ChannelConnectivity) -> None:
        await self.channel().wait_for_state_change(last_observed_state)

    async def channel_ready(self) -> None:
        await self.channel().channel_ready()

    async def close(self, grace: float | None = None) -> None:
        channels, self._channels = list(self._channels.values()), {}
        self._callables.clear()
        for ch in channels:
            await ch.close(grace)

    async def __aenter__(self) -> LeaderChannel:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


class _Rebinding:
    """A client-streaming multicallable bound to whichever manager is current at call time."""

    def __init__(self, owner: LeaderChannel, kind: str, method: str, kw: dict[str, Any]) -> None:
        self.owner = owner
        self.kind = kind
        self.method = method
        self.kw = kw

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.owner._callable(self.kind, self.method, self.kw)(*args, **kwargs)


class _Following:
    """Hops and backoff shared by one call's attempts."""

    def __init__(self, owner: LeaderChannel, timeout: float | None) -> None:
        self.owner = owner
        loop = asyncio.get_running_loop()
        self.deadline = loop.time() + (FOLLOW_LIMIT if timeout is None else timeout)
        self.timeout = timeout
        self.hops = 0

    def left(self) -> float | None:
        if self.timeout is None:
            return None
        return self.deadline - asyncio.get_running_loop().time()

    async def again(self, err: grpc.RpcError) -> bool:
        """Whether to send the failed call again (after a pause once every manager refused)."""
        if not self.owner.redirect(err):
            return False
        self.hops += 1
        if self.hops >= len(self.owner.targets):
            delay = min(BACKOFF_INITIAL * 2 ** (self.hops - len(self.owner.targets)), BACKOFF_MAX)
            if asyncio.get_running_loop().time() + delay >= self.deadline:
                return False
            await asyncio.sleep(delay)
        return True


class _Unary:
    def __init__(self, owner: LeaderChannel, method: str, kwargs: dict[str, Any]) -> None:
        self.owner = owner
        self.method = method
        self.kwargs = kwargs

    async def __call__(self, request: Any, *, timeout: float | None = None, **kw: Any) -> Any:
        following = _Following(self.owner, timeout)
        while True:
            call = self.owner._callable("unary_unary", self.method, self.kwargs)
            try:
                return await call(request, timeout=following.left(), **kw)
            except grpc.aio.AioRpcError as err:
                if not await following.again(err):
                    raise


class _Streaming:
    def __init__(self, owner: LeaderChannel, method: str, kwargs: dict[str, Any]) -> None:
        self.owner = owner
        self.method = method
        self.kwargs = kwargs

    def __call__(self, request: Any, *, timeout: float | None = None, **kw: Any) -> _StreamCall:
        return _StreamCall(self, request, timeout, kw)


class _StreamCall:
    """A server stream that follows the leader until its first message arrives."""

    def __init__(
        self, streaming: _Streaming, request: Any, timeout: float | None, kw: dict[str, Any]
    ) -> None:
        self._streaming = streaming
        self._request = request
        self._timeout = timeout
        self._kw = kw
        self._following: _Following | None = None
        self._started = False
        self._call = self._open(timeout)

    def _open(self, timeout: float | None) -> Any:
        s = self._streaming
        return s.owner._callable("unary_stream", s.method, s.kwargs)(
            self._request, timeout=timeout, **self._kw
        )

    async def read(self) -> Any:
        while True:
            try:
                item = await self._call.read()
            except grpc.aio.AioRpcError as err:
                if self._started:
                    raise
                if self._following is None:
                    self._following = _Following(self._streaming.owner, self._timeout)
                if not await self._following.again(err):
                    raise
                self._call = self._open(self._following.left())
                continue
            self._started = True
            return item

    def __aiter__(self) -> _StreamCall:
        return self

    async def __anext__(self) -> Any:
        item = await self.read()
        if item is grpc.aio.EOF:
            raise StopAsyncIteration
        return item

    def cancel(self) -> bool:
        return bool(self._call.cancel())

    def __getattr__(self, name: str) -> Any:
        return getattr(self._call, name)
