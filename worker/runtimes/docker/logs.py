"""Log copying: a finished container's output moves to the worker's ``LogStore``.

When an attempt ends, its output is copied to the log store and only then is
the container removed, so ``corral logs`` keeps working on finished tasks;
while the container exists its logs are read (and followed) from the engine.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator
from typing import Any

import docker.errors

from worker.logfiles import LogStore, read_log
from worker.runtimes.base import AttemptRef
from worker.runtimes.docker.engine import Engine, EngineErrors, engine_reason

log = logging.getLogger(__name__)


class ContainerLogs:
    def __init__(self, engine: Engine, store: LogStore) -> None:
        self._engine = engine
        self._store = store

    async def harvest(self, ref: AttemptRef, container_id: str) -> None:
        """Copy the output to the log store, then remove the container."""
        _, stream_client = await self._engine.clients()
        try:
            await self._engine.run_long(self._copy, stream_client, ref, container_id)
        except (*EngineErrors, OSError) as err:
            # Keep the container: its logs are still readable from the engine.
            log.warning("keeping container of %s: logs not copied: %s", ref.key, err)
            return
        with contextlib.suppress(docker.errors.NotFound):
            try:
                await self._engine.run(stream_client.api.remove_container, container_id, force=True)
            except EngineErrors as err:
                log.warning("remove container of %s: %s", ref.key, engine_reason(err))

    def _copy(self, client: Any, ref: AttemptRef, container_id: str) -> None:
        # Written aside and renamed: the kept file, once it exists, is the complete output.
        path = self._store.path(ref.task_id, ref.generation)
        path.parent.mkdir(parents=True, exist_ok=True)
        part = path.with_suffix(".part")
        stream = client.api.logs(container_id, stdout=True, stderr=True, stream=True, follow=False)
        try:
            with part.open("wb") as out:
                for chunk in stream:
                    out.write(chunk)
                    if out.tell() > 2 * self._store.max_bytes:
                        out.flush()
                        self._store.enforce_limit(part)
                        out.seek(0, os.SEEK_END)
        finally:
            stream.close()
        self._store.enforce_limit(part)
        part.replace(path)

    async def read(
        self, ref: AttemptRef, target: str, *, tail: int = 0, follow: bool = False
    ) -> AsyncIterator[bytes]:
        """The kept copy once there is one, else the engine's stream of container ``target``."""
        path = self._store.path(ref.task_id, ref.generation)
        stream = None
        if not await asyncio.to_thread(path.exists):
            stream = await self._engine_logs(target, tail=tail, follow=follow)
        if stream is None:
            async for chunk in read_log(path, tail=tail):
                yield chunk
            return
        try:
            while True:
                chunk = await self._engine.run_long(next, stream, None)
                if chunk is None:
                    return
                yield chunk
        finally:
            stream.close()

    async def _engine_logs(self, target: str, *, tail: int, follow: bool) -> Any:
        """The engine's log stream while the container exists, None once it is gone."""
        _, stream_client = await self._engine.clients()
        try:
            return await self._engine.run_long(
                stream_client.api.logs,
                target,
                stdout=True,
                stderr=True,
                stream=True,
                follow=follow,
                tail=tail if tail > 0 else "all",
            )
        except docker.errors.NotFound:
            return None
