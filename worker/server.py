"""Run a worker: load runtimes, adopt what survived a restart, serve, connect.

Stopping a worker (``RunningWorker.stop``, SIGTERM, Ctrl-C) closes its stream
and its server but leaves its attempts running: the next worker started on
the same data dir within the orphan grace adopts them instead of starting
duplicates; past the grace they stop themselves (see ``worker.fencing``).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from dataclasses import dataclass

from corral import loops, tracing
from corral.metrics import MetricsServer, maybe_serve
from corral.model import NodeId, NodeStats, Resources
from corral.serving import RunningServer, start_server, until_signalled, write_port_file
from corral.tls import TLS_NEEDED, check_exposure
from worker import fencing, logfiles, records, servicer, stats
from worker.config import WorkerConfig
from worker.fencing import Beacon, Lease
from worker.logfiles import LogStore
from worker.metrics import AttemptMetrics
from worker.runtimes import load_runtimes
from worker.runtimes.base import Fence, Fenced, Runtime
from worker.session import Identity, ManagerSession, Outbox
from worker.supervisor import Supervisor

log = logging.getLogger(__name__)

# How often logs of forgotten tasks are looked for (at most; a quarter of the retention).
PRUNE_EVERY = 600.0


@dataclass
class RunningWorker:
    node_id: NodeId
    port: int
    address: str
    capacity: Resources
    session: ManagerSession
    supervisor: Supervisor
    runtimes: dict[str, Runtime]
    _server: RunningServer
    _session_task: asyncio.Task[None]
    beacon: Beacon
    _fence_task: asyncio.Task[None]
    _metrics: MetricsServer | None = None
    _pruning: asyncio.Task[None] | None = None

    @property
    def metrics_port(self) -> int | None:
        """The bound port of ``/metrics`` (None when ``metrics_listen`` was empty)."""
        return None if self._metrics is None else self._metrics.port

    async def stop(self, grace: float = 2.0) -> None:
        """Leave the manager and stop serving; attempts keep running."""
        # Cancel until it has ended: a cancellation that lands inside a grpc
        # call can be absorbed there, and a worker must never hang on its way out.
        while not self._session_task.done():
            self._session_task.cancel()
            await asyncio.wait({self._session_task}, timeout=1.0)
        chores = [t for t in (self._fence_task, self._pruning) if t is not None]
        for chore in chores:
            chore.cancel()
        await asyncio.gather(*chores, return_exceptions=True)
        await self.supervisor.close()
        # From here the launchers count their grace, as if this process had died.
        self.beacon.release()
        await self._server.stop(grace)
        if self._metrics is not None:
            await self._metrics.stop()
        for runtime in self.runtimes.values():
            try:
                await runtime.close()
            except Exception:
                log.exception("closing runtime %s failed", runtime.name)


async def serve(config: WorkerConfig) -> RunningWorker:
    check_exposure(
        config.listen,
        tls=config.tls.enabled,
        acl=bool(config.token),
        insecure=config.insecure,
        program="the worker",
        needs=(TLS_NEEDED, "a node token (--token)"),
    )
    runtimes = await load_runtimes(config, config.runtimes)
    # Held before anything is adopted: launchers waiting out their grace see us back.
    beacon = Beacon(config.data_dir / "lease")
    beacon.hold()
    lease = Lease(config.data_dir / "lease" / "lease.json")
    fence = Fence(
        beacon.directory,
        grace=lambda: lease.terms.orphan_grace,
        kill_wait=lambda: lease.terms.orphan_kill_wait,
    )
    for runtime in runtimes.values():
        if isinstance(runtime, Fenced):
            runtime.fence_with(fence)
    node_id = records.node_id(config.data_dir)
    outbox = Outbox()
    metrics = AttemptMetrics()
    supervisor = Supervisor(
        runtimes,
        node_id=node_id,
        emit=outbox.update,
        records=records.AttemptRecords(config.data_dir / "attempts", node_id),
        metrics=metrics,
    )
    metrics.watch(supervisor.running_by_runtime, config.data_dir / "logs")
    metrics_server: MetricsServer | None = None
    try:
        await supervisor.adopt()
        capacity = await asyncio.to_thread(stats.capacity, config.capacity, config.data_dir)

        async def node_stats() -> NodeStats:
            running = supervisor.running_count
            return await stats.node_stats(config.data_dir, runtimes.values(), running)

        service = servicer.WorkerServicer(
            supervisor,
            capacity=capacity,
            stats=node_stats,
            logs=LogStore(config.data_dir / "logs", config.log_max_bytes),
        )
        metrics_server = await maybe_serve(config.metrics_listen, metrics.registry)
        server = await start_server(
            config.listen,
            [servicer.register(service)],
            tls=config.tls,
            interceptors=tracing.server_interceptors("worker"),
        )
    except BaseException:
        beacon.release()
        if metrics_server is not None:
            await metrics_server.stop()
        await supervisor.close()
        for runtime in runtimes.values():
            await runtime.close()
        raise
    egress = getattr(runtimes.get("http"), "egress", None)
    if egress is not None:
        egress.own_ports.add(server.port)  # http tasks never call this worker
    address = config.advertise or advertised(config.listen, server.port)
    identity = Identity(
        node_id=node_id,
        name=config.name or socket.gethostname(),
        address=address,
        labels=dict(config.labels),
        capacity=capacity,
        runtimes=tuple(runtimes),
    )
    session = ManagerSession(
        manager=config.manager,
        identity=identity,
        supervisor=supervisor,
        outbox=outbox,
        stats=node_stats,
        reconnect_initial=config.reconnect_initial,
        reconnect_max=config.reconnect_max,
        lease=lease,
        tls=config.tls,
        token=config.token,
    )
    loop = asyncio.get_running_loop()
    task = loop.create_task(session.run())
    fencing_task = loop.create_task(fencing.fence(supervisor.fence, lease))
    pruning = loop.create_task(_prune_logs(config, session, supervisor), name="corral-log-gc")
    log.info("worker %s serving on %s, runtimes %s", node_id, address, ", ".join(runtimes))
    return RunningWorker(
        node_id,
        server.port,
        address,
        capacity,
        session,
        supervisor,
        runtimes,
        server,
        task,
        beacon,
        fencing_task,
        metrics_server,
        _pruning=pruning,
    )


async def _prune_logs(
    config: WorkerConfig, session: ManagerSession, supervisor: Supervisor
) -> None:
    """Delete logs of tasks the manager no longer keeps (its retain_finished, from Welcome)."""
    while True:
        retain = session.retain_finished
        await asyncio.sleep(min(PRUNE_EVERY, retain / 4) if retain else PRUNE_EVERY)
        if session.retain_finished is None:
            continue
        running = {update.task_id for update in supervisor.current()}
        try:
            await asyncio.to_thread(
                logfiles.prune,
                config.data_dir / "logs",
                older_than=session.retain_finished,
                keep=running,
                now=time.time(),
            )
        except OSError:
            log.exception("pruning old logs failed")


def advertised(listen: str, port: int) -> str:
    """The listen host with the bound port; the host name for a wildcard host."""
    host = listen.rsplit(":", 1)[0] if ":" in listen else listen
    if host in ("", "0.0.0.0", "[::]", "::"):
        host = socket.gethostname()
    return f"{host}:{port}"


def run(config: WorkerConfig) -> None:
    """Serve until SIGTERM or SIGINT; running attempts are left to the next worker."""

    async def main() -> None:
        worker = await serve(config)
        write_port_file(config.port_file, worker.port)
        await until_signalled()
        log.info("worker stopping; its attempts keep running")
        await worker.stop()

    tracing.setup("worker")
    try:
        # uvloop, as the manager (corral.loops): a start is mostly loop machinery.
        loops.run(main())
    finally:
        tracing.shutdown()
