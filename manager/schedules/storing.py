"""The schedules' store as the event loop sees it: every call on the store's own thread.

``ScheduleStore`` is plain synchronous database code (SQLite's
``schedules.db``, or the same SQL on PostgreSQL). A call may wait on the
database -- SQLite's ``busy_timeout`` is 5 s on a locked file, PostgreSQL a
network round trip -- so the loops never make one on the event loop: each
call is handed to one dedicated thread, in order, and awaited. One thread
keeps the calls serialized as they were on the loop (a schedule's
operations already hold its lock), and the connection is only ever used
from that thread once the store is open.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from corral.schedules import Run, Schedule, ScheduleSpec, ScheduleState, Timing
from manager.schedules.store import ScheduleStore

T = TypeVar("T")


class ScheduleStoreThread:
    """``ScheduleStore``'s operations, awaited; each runs on the store's thread."""

    def __init__(self, store: ScheduleStore) -> None:
        self.store = store
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="corral-schedules")

    async def _call(self, fn: Callable[..., T], *args: object) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._thread, fn, *args)

    async def create(self, schedule: Schedule) -> None:
        await self._call(self.store.create, schedule)

    async def replace_spec(self, spec: ScheduleSpec) -> None:
        await self._call(self.store.replace_spec, spec)

    async def save_state(self, name: str, state: ScheduleState, timing: Timing) -> None:
        await self._call(self.store.save_state, name, state, timing)

    async def get(self, name: str) -> Schedule:
        return await self._call(self.store.get, name)

    async def names(self) -> list[str]:
        return await self._call(self.store.names)

    async def delete(self, name: str) -> None:
        await self._call(self.store.delete, name)

    async def put_run(self, run: Run, *, keep: int) -> None:
        await self._call(lambda: self.store.put_run(run, keep=keep))

    async def runs(self, schedule: str) -> list[Run]:
        return await self._call(self.store.runs, schedule)

    async def get_run(self, schedule: str, run_id: str) -> Run:
        return await self._call(self.store.get_run, schedule, run_id)

    async def unfinished_runs(self) -> list[Run]:
        return await self._call(self.store.unfinished_runs)

    async def close(self) -> None:
        try:
            await self._call(self.store.close)
        finally:
            self._thread.shutdown(wait=True)
