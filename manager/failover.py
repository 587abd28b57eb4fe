"""Several managers on one PostgreSQL: stand by, lead, step down, stand by again.

A ``Replica`` serves gRPC for its whole life on one port, leader or not:

- The ``Gate`` (a server interceptor) lets calls through only while this
  manager leads and has loaded the state. Otherwise ManagerService,
  JobService, ScheduleService, EnvironmentService (every service but health
  and reflection) answer UNAVAILABLE with the leader's address in the
  ``corral-leader`` trailing metadata, and the health check answers
  NOT_SERVING, so a Kubernetes Service or a load balancer sends traffic only
  to the leader. The gate asks ``Leadership.leading()`` on every call, a
  clock comparison with no I/O: a leader paused past its lease answers
  NOT_SERVING from its first instruction after waking, before its renewal
  loop has even noticed.
- The servicers of the current term are behind a ``Switchboard``: winning
  the lease loads the state (tasks, attempts, nodes, the event index,
  schedules) into a fresh core with a store fenced by the new term,
  registers its servicers there and opens the gate. Losing it (a renewal
  finds a newer term, the lease lapses unrenewed, or a commit is fenced)
  closes the gate, cancels the calls in flight (workers' streams among them:
  they redial, are refused with the leader's address and say Hello there),
  and throws that core away. Nothing of a lost term is kept.
- The ACL tokens live in the database too (``manager.stores.postgres_tokens``),
  so every manager knows the same ones. Each term opens a token store fenced
  by its term and fills the replica's ``Tokens`` cache from it (importing the
  data dir's old ``acl.json`` first); stepping down empties the cache. The
  gate runs before the ``Authorizer``: a standby holds no tokens, so it
  answers every call UNAVAILABLE with the leader's address (which its
  public health check and the lease row tell anyone anyway) rather than
  refusing a token the leader accepts.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

import grpc
from google.protobuf import descriptor_pool
from grpc_health.v1 import health_pb2

from corral import tracing
from corral.leaders import LEADER_METADATA
from corral.metrics import MetricsServer, maybe_serve
from corral.serving import RunningServer, start_server
from manager import encoding, extensions, logs, sealing, servicer
from manager.acl import StoredTokens, Tokens, import_file
from manager.acl import servicer as acl_servicer
from manager.acl.authorizing import Authorizer
from manager.config import ManagerConfig
from manager.control import Extension
from manager.core import TaskManager
from manager.leadership import Leadership
from manager.metrics import ManagerMetrics
from manager.stores.postgres import PostgresStore
from manager.stores.postgres_tokens import PostgresTokenStore
from manager.switchboard import Recorder, Switchboard

log = logging.getLogger(__name__)

HEALTH = health_pb2.DESCRIPTOR.services_by_name["Health"].full_name
# Announced by health and reflection even while standing by.
SERVICES = (
    "corral.v1.ManagerService",
    "corral.v1.JobService",
    "corral.v1.ScheduleService",
    "corral.v1.EnvironmentService",
)
# After a failed term, wait this long before standing for election again.
RETRY_AFTER = 1.0


def _not_serving() -> grpc.RpcMethodHandler:
    async def check(request: Any, context: Any) -> health_pb2.HealthCheckResponse:
        return health_pb2.HealthCheckResponse(status=health_pb2.HealthCheckResponse.NOT_SERVING)

    return grpc.unary_unary_rpc_method_handler(
        check,
        request_deserializer=health_pb2.HealthCheckRequest.FromString,
        response_serializer=health_pb2.HealthCheckResponse.SerializeToString,
    )


def _streaming(method: str) -> tuple[bool, bool]:
    """(client streaming, server streaming) of ``/pkg.Service/Method``; unary if unknown."""
    try:
        found = descriptor_pool.Default().FindMethodByName(method.strip("/").replace("/", "."))
    except KeyError:
        return False, False
    return bool(found.client_streaming), bool(found.server_streaming)


class Gate(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """Only the serving leader's calls pass; see the module docstring."""

    def __init__(self, serving: Callable[[], bool], leader: Callable[[], str]) -> None:
        self.serving = serving
        self.leader = leader
        self._over = asyncio.Event()
        self._not_serving = _not_serving()

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Any],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        service = details.method.split("/")[1] if details.method.count("/") == 2 else ""
        if service.startswith("grpc.reflection."):
            return await continuation(details)
        if service == HEALTH:
            if details.method.endswith("/Check") and not self.serving():
                return self._not_serving
            return await continuation(details)
        if not self.serving():
            return self._refusal(details.method)
        handler = await continuation(details)
        return None if handler is None else self._tracked(handler)

    def _refusal(self, method: str) -> grpc.RpcMethodHandler:
        leader = self.leader()

        async def refuse(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> None:
            where = f"the leader is {leader}" if leader else "no leader is elected yet"
            await context.abort(
                grpc.StatusCode.UNAVAILABLE,
                f"this manager is a standby; {where}",
                trailing_metadata=((LEADER_METADATA, leader),),
            )

        client_streaming, server_streaming = _streaming(method)
        if client_streaming and server_streaming:
            return grpc.stream_stream_rpc_method_handler(refuse)
        if client_streaming:
            return grpc.stream_unary_rpc_method_handler(refuse)
        if server_streaming:
            return grpc.unary_stream_rpc_method_handler(refuse)
        return grpc.unary_unary_rpc_method_handler(refuse)

    def _tracked(self, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        """The handler; if its calls stream replies, they end when the term does."""
        for kind in ("unary_stream", "stream_stream"):
            behavior = getattr(handler, kind)
            if behavior is not None:
                return handler._replace(**{kind: self._ending(behavior)})
        return handler

    def begin_term(self) -> None:
        self._over = asyncio.Event()

    def end_term(self) -> None:
        """End every stream of the term with UNAVAILABLE naming the new leader (once known)."""
        self._over.set()

    async def _abort(self, context: grpc.aio.ServicerContext[Any, Any]) -> None:
        await context.abort(
            grpc.StatusCode.UNAVAILABLE,
            "this manager stepped down; ask the new leader",
            trailing_metadata=((LEADER_METADATA, ""),),
        )

    def _ending(self, behavior: Callable[..., Any]) -> Callable[..., Any]:
        over = self._over
        if inspect.isasyncgenfunction(behavior):

            async def stream(request: Any, context: Any) -> Any:
                items = behavior(request, context)
                ended = asyncio.ensure_future(over.wait())
                try:
                    while True:
                        item = asyncio.ensure_future(anext(items))
                        await asyncio.wait({item, ended}, return_when=asyncio.FIRST_COMPLETED)
                        if not item.done():
                            item.cancel()
                            await asyncio.gather(item, return_exceptions=True)
                            await self._abort(context)
                        try:
                            yield item.result()
                        except StopAsyncIteration:
                            return
                finally:
                    ended.cancel()
                    await items.aclose()

            return stream

        async def call(request: Any, context: Any) -> Any:
            work = asyncio.ensure_future(behavior(request, context))
            ended = asyncio.ensure_future(over.wait())
            try:
                await asyncio.wait({work, ended}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                ended.cancel()
            if not work.done():
                work.cancel()
                await asyncio.gather(work, return_exceptions=True)
                await self._abort(context)
            return work.result()

        return call


class Replica:
    """One manager of several sharing ``config.store``; see the module docstring."""

    def __init__(self, config: ManagerConfig, *, extension_modules: Sequence[str] | None) -> None:
        self.config = config
        self.extension_modules = extension_modules
        self.leadership = Leadership(
            config.store,
            advertise=config.advertise or config.listen,
            lease=config.lease_duration,
        )
        self.board = Switchboard()
        self.gate = Gate(self.serving, lambda: self.leadership.leader)
        # Filled from the database while this manager leads (see the module docstring).
        self.tokens = Tokens()
        # Per manager, as on one: replicas share --secret-key-file so a failover keeps secrets.
        self.sealer = sealing.Sealer(sealing.load_key(config.data_dir, config.secret_key_file))
        self.core: TaskManager | None = None
        self.extensions: list[Extension] = []
        # Set while this manager leads and serves; tests and `corral up` wait on it.
        self.led = asyncio.Event()
        self._ready = False
        self._server: RunningServer | None = None
        self._task: asyncio.Task[None] | None = None
        self.port = 0
        # Where this term's /metrics listens while leading (None when off or standing by).
        self.metrics_port: int | None = None

    def serving(self) -> bool:
        return self._ready and self.leadership.leading()

    async def start(self) -> None:
        await self.leadership.open()
        try:
            register = [
                self.board.add,
                *(_announce(name) for name in SERVICES[1:]),
                acl_servicer.register(self.tokens, enabled=self.config.acl),
            ]
            # The gate first: a standby refuses with the leader's address before any token check.
            authorizing = [Authorizer(self.tokens)] if self.config.acl else []
            self._server = await start_server(
                self.config.listen,
                register,
                tls=self.config.tls,
                interceptors=tracing.server_interceptors("manager"),
                authenticate=[self.gate, *authorizing],
            )
        except BaseException:
            await self.leadership.close()
            raise
        self.port = self._server.port
        if not self.config.advertise and self.config.listen.endswith(":0"):
            # Port 0 picked a free port: that is the one to advertise.
            host = self.config.listen.rsplit(":", 1)[0]
            self.leadership.advertise = f"{host}:{self.port}"
        await self._health(serving=False)
        self._task = asyncio.create_task(self._run(), name="corral-replica")

    async def _health(self, *, serving: bool) -> None:
        assert self._server is not None
        status = (
            health_pb2.HealthCheckResponse.SERVING
            if serving
            else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        for name in ("", *SERVICES):
            await self._server.health.set(name, status)

    async def _run(self) -> None:
        while True:
            await self.leadership.campaign()
            try:
                await self._lead()
            except Exception:
                log.exception("leading failed; standing by again")
                with contextlib.suppress(Exception):
                    await self.leadership.release()
                await asyncio.sleep(RETRY_AFTER)

    async def _lead(self) -> None:
        won = time.monotonic()
        deposed = asyncio.Event()
        term = self.leadership.term
        # One cache of spec messages per term: the servicer fills it; sessions, the store read it.
        specs = encoding.spec_cache()
        codec = encoding.ProtoCodec(specs, self.sealer)
        store = await PostgresStore.open(
            self.config.store,
            term=term,
            codec=codec,
            lease=self.config.lease_duration,
            on_fenced=deposed.set,
        )
        core = await TaskManager.open(
            self.config, log_source=logs.source(self.config.tls), codec=codec, store=store
        )
        installed: list[Extension] = []
        # /metrics is the leader's: each term serves its own core's registry.
        metrics = ManagerMetrics(core)
        metrics.follow(core)
        exposed: MetricsServer | None = None
        try:
            loop = asyncio.get_running_loop()

            def fenced() -> None:  # a token write was fenced (from any thread)
                loop.call_soon_threadsafe(deposed.set)

            self.tokens.attach(*await asyncio.to_thread(self._tokens_of, term, fenced))
            exposed = await maybe_serve(self.config.metrics_listen, metrics.registry)
            self.metrics_port = exposed.port if exposed is not None else None
            installed = extensions.install_all(core, self.config, self.extension_modules)
            recorder = Recorder()
            for add in [
                servicer.register(core, specs, self.tokens),
                *(e.register for e in installed),
            ]:
                add(recorder)
            self.board.current = recorder
            self.gate.begin_term()
            await core.start()
            for ext in installed:
                await ext.start()
            self.core, self.extensions = core, installed
            self._ready = True
            await self._health(serving=True)
            self.led.set()
            log.info(
                "manager leading and serving (term %d, state loaded in %.2fs)",
                term,
                time.monotonic() - won,
            )
            await _first(self.leadership.hold(), deposed.wait())
        finally:
            log.info("manager stepping down", extra={"term": term})
            self._ready = False
            self.led.clear()
            self.leadership.step_down()
            await self._health(serving=False)
            self.gate.end_term()
            self.board.current = Recorder()
            self.tokens.detach()
            self.core, self.extensions = None, []
            if exposed is not None:
                self.metrics_port = None
                await exposed.stop()
            await _close(core, installed)

    def _tokens_of(
        self, term: int, on_fenced: Callable[[], None]
    ) -> tuple[PostgresTokenStore, StoredTokens]:
        """The term's token store (the data dir's ``acl.json`` imported into it) and its
        tokens, read on a thread: connecting and reading never hold up the event loop."""
        store = PostgresTokenStore(
            self.config.store, term=term, lease=self.config.lease_duration, on_fenced=on_fenced
        )
        try:
            import_file(self.config.data_dir, store)
            return store, store.load()
        except BaseException:
            store.close()
            raise

    async def stop(self, grace: float | None = None) -> None:
        """Step down (handing the lease over at once), then stop serving."""
        grace = self.config.stop_grace if grace is None else grace
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        with contextlib.suppress(Exception):
            await self.leadership.release()
        if self._server is not None:
            await self._server.stop(grace)
        await self.leadership.close()


def _announce(name: str) -> Callable[[grpc.aio.Server], str]:
    return lambda server: name


async def _first(*waits: Any) -> None:
    """Return when the first of ``waits`` does; cancel the others."""
    tasks = [asyncio.ensure_future(w) for w in waits]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def _close(core: TaskManager, installed: list[Extension]) -> None:
    for ext in reversed(installed):
        try:
            await ext.close()
        except Exception:
            log.exception("closing an extension failed")
    await core.close()


async def serve(
    config: ManagerConfig, *, extension_modules: Sequence[str] | None = None
) -> Replica:
    """Start a replica: it serves (as a standby) at once and leads when it wins the lease."""
    replica = Replica(config, extension_modules=extension_modules)
    await replica.start()
    return replica
