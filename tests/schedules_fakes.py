"""Fakes for the schedules tests: a TaskControl that runs http tasks in-process, and
real HTTP endpoints on 127.0.0.1 (aiohttp) that answer, fail, hang or count hits."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import replace

from aiohttp import web

from corral.errors import DeadlineExceeded, FailedPrecondition, NotFound
from corral.model import HttpResult, Task, TaskId, TaskState, TaskStatus
from manager.control import NewTask
from worker.runtimes.http import HttpRuntime


class FakeTasks:
    """``TaskControl`` whose http tasks are executed at once by a real ``HttpRuntime``.

    With ``hold=True`` tasks stay PENDING, as when no worker offers the runtime.
    """

    def __init__(self, *, hold: bool = False) -> None:
        self.runtime = HttpRuntime()
        self.tasks: dict[TaskId, Task] = {}
        self.jobs: dict[TaskId, asyncio.Task[None]] = {}
        self.changed = asyncio.Condition()
        self.hold = hold
        self.submitted: list[Task] = []
        self.stops: list[TaskId] = []

    async def submit(self, tasks: Sequence[NewTask]) -> list[Task]:
        out = []
        for new in tasks:
            task = Task(TaskId(str(uuid.uuid4())), new.spec, TaskStatus(created_at=time.time()))
            self.tasks[task.id] = task
            self.submitted.append(task)
            out.append(task)
            if not self.hold:
                self.jobs[task.id] = asyncio.create_task(self._execute(task))
        return out

    async def _set(self, task_id: TaskId, **status: object) -> None:
        task = self.tasks[task_id]
        self.tasks[task_id] = replace(task, status=replace(task.status, **status))  # type: ignore[arg-type]
        async with self.changed:
            self.changed.notify_all()

    async def _execute(self, task: Task) -> None:
        await self._set(task.id, state=TaskState.RUNNING, node_id="fake")
        if task.spec.http is not None:
            result = await self.runtime.call(task.spec.http)
            ok = not result.error and task.spec.http.accepts(result.status_code)
        else:
            fake = task.spec.fake
            if fake is not None and fake.duration:
                await asyncio.sleep(fake.duration)
            result, ok = None, fake is None or fake.exit_code == 0
        await self._set(
            task.id,
            state=TaskState.COMPLETED if ok else TaskState.FAILED,
            result=result,
            finished_at=time.time(),
        )

    async def get(self, ref: str) -> Task:
        try:
            return self.tasks[TaskId(ref)]
        except KeyError:
            raise NotFound(f"no task {ref}") from None

    async def stop(self, ref: str, reason: str = "") -> Task:
        task = await self.get(ref)
        if task.status.state.final:
            raise FailedPrecondition("already ended")
        self.stops.append(task.id)
        job = self.jobs.get(task.id)
        if job is not None:
            job.cancel()
            await asyncio.gather(job, return_exceptions=True)
        await self._set(task.id, state=TaskState.STOPPED, message=reason)
        return self.tasks[task.id]

    async def wait(
        self, ref: str, until: Callable[[Task], bool], timeout: float | None = None
    ) -> Task:
        try:
            async with asyncio.timeout(timeout), self.changed:
                await self.changed.wait_for(lambda: until(self.tasks[TaskId(ref)]))
        except TimeoutError:
            raise DeadlineExceeded(f"task {ref} not done in {timeout}s") from None
        return self.tasks[TaskId(ref)]

    def by_label(self, key: str, value: str) -> list[Task]:
        return [t for t in self.tasks.values() if t.spec.labels.get(key) == value]

    async def close(self) -> None:
        for job in self.jobs.values():
            job.cancel()
        await asyncio.gather(*self.jobs.values(), return_exceptions=True)
        await self.runtime.close()


class Endpoints:
    """A real HTTP server on 127.0.0.1 with /ok, /fail, /hang, /big, /echo and /gate."""

    def __init__(self) -> None:
        self.hits: dict[str, int] = {}
        self.gate = asyncio.Event()  # /gate answers once it is set
        self.runner: web.AppRunner | None = None
        self.port = 0

    async def __aenter__(self) -> Endpoints:
        app = web.Application()
        app.router.add_route("*", "/{name}", self._handle)
        self.runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.2)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.gate.set()
        assert self.runner is not None
        await self.runner.cleanup()

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/{name}"

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        self.hits[name] = self.hits.get(name, 0) + 1
        if name == "fail":
            return web.Response(status=500, text="boom")
        if name == "hang":
            await asyncio.sleep(3600)
        if name == "gate":
            await self.gate.wait()
            return web.Response(text="opened")
        if name == "big":
            return web.Response(body=b"x" * (200 * 1024))
        if name == "echo":
            body = await request.read()
            return web.json_response(
                {"method": request.method, "body": body.decode(), "h": request.headers.get("X-T")}
            )
        return web.Response(text=f"hello from {name}")


__all__ = ["Endpoints", "FakeTasks", "HttpResult"]
