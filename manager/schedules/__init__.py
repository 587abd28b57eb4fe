"""Schedules: durable cron or interval triggers that call HTTP endpoints or run tasks.

The job of the .NET cron orchestrator, as a first-class resource. Modules:
``model`` (domain types), ``validation``, ``timing`` (pure: which slot is due,
windows, catch-up; an injectable clock), ``runs`` (one run: submit ``http``
tasks, collect their results), ``loops`` (``ScheduleLoops``: one loop per
running schedule, concurrency policies), ``store`` (``schedules.db``) and
``storing`` (its calls on their own thread, off the event loop),
``config_files`` (YAML/JSON/appsettings.json), ``convert`` and ``servicer``
(the gRPC edge). The manager installs it through ``install``.
"""

from __future__ import annotations

import logging

import grpc

from corral.errors import NotFound, ValidationError
from corral.schedulefiles import health_schedule, load_files
from corral.schedules import ScheduleState
from manager.config import ManagerConfig
from manager.control import Extension, TaskControl
from manager.schedules.loops import ScheduleLoops
from manager.schedules.servicer import register
from manager.schedules.store import ScheduleStore
from manager.schedules.storing import ScheduleStoreThread
from manager.schedules.timing import Clock, SystemClock
from manager.stores.postgres import PostgresStore
from manager.stores.postgres_schedules import PostgresScheduleStore

log = logging.getLogger(__name__)

DEFAULT_NAME = "default"


def _open_store(tasks: TaskControl, config: ManagerConfig) -> ScheduleStore:
    """Schedules live where the tasks live: beside them in PostgreSQL, else in schedules.db."""
    tasks_store = getattr(tasks, "store", None)
    if isinstance(tasks_store, PostgresStore):
        return PostgresScheduleStore(
            tasks_store.url, term=tasks_store.term, lease=tasks_store.lease
        )
    return ScheduleStore(config.data_dir / "schedules.db")


class SchedulesExtension:
    def __init__(
        self, tasks: TaskControl, config: ManagerConfig, clock: Clock | None = None
    ) -> None:
        self._config = config
        self.store = ScheduleStoreThread(_open_store(tasks, config))
        self.loops = ScheduleLoops(tasks, self.store, clock or SystemClock())

    def register(self, server: grpc.aio.Server) -> str:
        return register(self.loops, server)

    async def start(self) -> None:
        await self.define_default()
        await self.loops.resume()
        # The original's loop is a hosted service: Running from the service's start.
        config = self._config
        if config.schedules_file and config.schedules_autostart and not await self._running():
            await self.loops.start(DEFAULT_NAME)

    async def _running(self) -> bool:
        return (await self.loops.get(DEFAULT_NAME)).status.state is ScheduleState.RUNNING

    async def define_default(self) -> None:
        """The schedule named ``default``: from the schedules files, else calling the health URL."""
        paths = self._config.schedules_file
        if paths:
            try:
                await self.loops.define(load_files(paths, name=DEFAULT_NAME))
            except ValidationError as err:
                # The manager does not start on a bad file; say which files and which key.
                names = ", ".join(str(p) for p in paths)
                where = err.field if err.field in map(str, paths) else f"{names}: {err.field}"
                raise ValidationError(where, err.problem) from err
        elif self._config.default_schedule_url:
            try:
                await self.loops.get(DEFAULT_NAME)
            except NotFound:
                await self.loops.create(health_schedule(self._config.default_schedule_url))

    async def close(self) -> None:
        await self.loops.close()
        await self.store.close()


def install(tasks: TaskControl, config: ManagerConfig) -> Extension:
    return SchedulesExtension(tasks, config)
