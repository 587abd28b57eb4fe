"""Run the manager: open the store, build the core, serve gRPC, stop gracefully."""

from __future__ import annotations

import asyncio
import gc
import logging
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import grpc

from corral import loops, tracing
from corral.metrics import MetricsServer, maybe_serve
from corral.serving import start_server, until_signalled, write_port_file
from corral.tls import check_exposure
from manager import encoding, extensions, failover, logs, sealing, servicer
from manager.acl import Tokens, import_file
from manager.acl import servicer as acl_servicer
from manager.acl.authorizing import Authorizer
from manager.config import ManagerConfig
from manager.control import Extension
from manager.core import TaskManager
from manager.failover import Replica
from manager.metrics import ManagerMetrics
from manager.scheduling import STRATEGIES
from manager.store.sqlite_tokens import SqliteTokenStore

log = logging.getLogger(__name__)

# Young-generation allocations between collections (default 700), then the older generations'.
GC_THRESHOLDS = (50_000, 20, 20)
# Seconds a thread may hold the GIL while another waits (default 0.005).
SWITCH_INTERVAL = 0.001


@dataclass
class RunningManager:
    core: TaskManager
    port: int
    server: grpc.aio.Server
    _stop: Callable[[float], object]
    extensions: list[Extension] = field(default_factory=list)
    metrics: MetricsServer | None = None
    tokens: Tokens | None = None

    @property
    def metrics_port(self) -> int | None:
        """The bound port of ``/metrics`` (None when ``metrics_listen`` was empty)."""
        return None if self.metrics is None else self.metrics.port

    async def stop(self, grace: float | None = None) -> None:
        """Stop taking calls, let those in flight finish within ``grace``, then close."""
        result = self._stop(self.core.config.stop_grace if grace is None else grace)
        if asyncio.iscoroutine(result):
            await result
        for extension in reversed(self.extensions):
            try:
                await extension.close()
            except Exception:
                log.exception("closing an extension failed")
        if self.metrics is not None:
            await self.metrics.stop()
        if self.tokens is not None:
            self.tokens.close()
        await self.core.close()


def tune_process() -> None:
    """Interpreter settings for a process that is a manager (not for a library caller).

    The manager keeps many small long-lived objects (tasks, statuses, events in
    flight, protobuf messages): at the default thresholds the cyclic collector
    rescans them so often that it took about a quarter of the CPU under load.
    The store's thread needs the GIL back to finish each commit that a reply or
    an Assign waits for; at the default 5 ms a busy event loop delays it that long.
    Both are process-wide, so only ``run`` (and the benchmarks' manager process)
    set them, never ``serve``, which tests and embedders call in their own process.
    """
    gc.set_threshold(*GC_THRESHOLDS)
    sys.setswitchinterval(SWITCH_INTERVAL)


def open_tokens(data_dir: Path) -> Tokens:
    """The tokens in the store under ``data_dir`` (open the store first: it migrates the
    file), with the previous release's ``acl.json`` imported once."""
    store = SqliteTokenStore.open(data_dir)
    try:
        import_file(data_dir, store)
        return Tokens(store)
    except BaseException:
        store.close()
        raise


async def serve(
    config: ManagerConfig, *, extension_modules: Sequence[str] | None = None
) -> RunningManager | Replica:
    """Start a manager; ``extension_modules`` overrides ``manager.extensions.MODULES``.

    With ``config.store`` (PostgreSQL) it is a ``Replica``: it serves at once,
    as a standby, and leads once it wins the lease (``Replica.led``).
    """
    if config.strategy not in STRATEGIES:
        raise ValueError(f"strategy must be one of {', '.join(STRATEGIES)}")
    check_exposure(
        config.listen,
        tls=config.tls.enabled,
        acl=config.acl,
        insecure=config.insecure,
        program="the manager",
    )
    if config.store:
        return await failover.serve(config, extension_modules=extension_modules)
    sealer = sealing.Sealer(sealing.load_key(config.data_dir, config.secret_key_file))
    # One cache of spec messages per manager: the servicer fills it, sessions and the store read it.
    specs = encoding.spec_cache()
    codec = encoding.ProtoCodec(specs, sealer)
    core = await TaskManager.open(config, log_source=logs.source(config.tls), codec=codec)
    metrics = ManagerMetrics(core)
    metrics.follow(core)
    installed: list[Extension] = []
    exposed: MetricsServer | None = None
    tokens: Tokens | None = None
    try:
        tokens = open_tokens(config.data_dir)
        installed = extensions.install_all(core, config, extension_modules)
        register = [
            servicer.register(core, specs, tokens),
            acl_servicer.register(tokens, enabled=config.acl),
            *(ext.register for ext in installed),
        ]
        exposed = await maybe_serve(config.metrics_listen, metrics.registry)
        running = await start_server(
            config.listen,
            register,
            tls=config.tls,
            interceptors=tracing.server_interceptors("manager"),
            authenticate=[Authorizer(tokens)] if config.acl else [],
        )
        await core.start()
        for ext in installed:
            await ext.start()
    except BaseException:
        if exposed is not None:
            await exposed.stop()
        if tokens is not None:
            tokens.close()
        await core.close()
        raise
    log.info("manager serving", extra={"port": running.port, "data_dir": str(config.data_dir)})
    return RunningManager(
        core, running.port, running.server, running.stop, installed, exposed, tokens
    )


def run(config: ManagerConfig) -> None:
    """Serve until SIGTERM or SIGINT, then stop gracefully."""

    tune_process()

    async def main() -> None:
        manager = await serve(config)
        write_port_file(config.port_file, manager.port)
        await until_signalled()
        log.info("manager stopping")
        await manager.stop()

    tracing.setup("manager")
    try:
        loops.run(main())
    finally:
        tracing.shutdown()
