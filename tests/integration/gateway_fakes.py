"""A small in-process manager for the gateway tests: a fake core that really
runs ``process`` tasks as local subprocesses (so job logs are real output),
served over gRPC with ManagerService and the real JobService extension."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import replace
from typing import Any

import grpc
import httpx

from corral import convert
from corral.errors import AlreadyExists, DeadlineExceeded, NotFound
from corral.model import Event, Node, NodeId, NodeStats, Resources, Task, TaskId, TaskState
from corral.serving import start_server, translate_errors
from corral.v1 import manager_pb2, manager_pb2_grpc
from corral.validation import check_task_id, validate_task_spec
from manager import jobs
from manager.config import ManagerConfig
from manager.control import NewTask, TaskQuery


class FakeCore:
    """TaskControl over a dict; process tasks run for real, others stay PENDING."""

    def __init__(self) -> None:
        self.tasks: dict[str, Task] = {}
        self.output: dict[str, bytearray] = {}
        self.procs: dict[str, asyncio.subprocess.Process] = {}
        self.events: list[Event] = []
        # Event streams opened so far: a test subscribes, awaits one more, then acts.
        self.subscriptions = 0
        self.changed = asyncio.Condition()
        self.runners: set[asyncio.Task[None]] = set()
        self.node = Node(
            NodeId("node-1"),
            "node-1",
            address="127.0.0.1:50052",
            capacity=Resources(2.0, 4 << 30, 100 << 30),
            allocated=Resources(0.5, 1 << 30, 0),
            stats=NodeStats(
                cpu_percent=25.0,
                memory_used_bytes=1 << 30,
                memory_total_bytes=4 << 30,
                disk_used_bytes=10 << 30,
                disk_total_bytes=100 << 30,
                load1=0.5,
                load5=0.4,
                load15=0.3,
                task_count=1,
            ),
            runtimes=("process", "fake"),
        )

    async def _set(self, task: Task, kind: str = "task.state") -> None:
        async with self.changed:
            self.tasks[task.id] = task
            self.events.append(Event(len(self.events) + 1, time.time(), kind, task=task))
            self.changed.notify_all()

    async def submit(self, tasks: Sequence[NewTask]) -> list[Task]:
        out = []
        for new in tasks:
            validate_task_spec(new.spec)
            if new.id is not None:
                check_task_id(new.id)
                if new.id in self.tasks:
                    raise AlreadyExists(f"id: task {new.id} already exists")
            task_id = TaskId(new.id or str(uuid.uuid4()))
            now = time.time()
            task = Task(task_id, new.spec)
            task = replace(task, status=replace(task.status, created_at=now))
            if new.spec.runtime != "process":
                msg = f"no node offers the {new.spec.runtime} runtime"
                task = replace(task, status=replace(task.status, message=msg))
            await self._set(task, "task.submitted")
            out.append(task)
            if new.spec.runtime == "process":
                runner = asyncio.create_task(self._run(task))
                self.runners.add(runner)
                runner.add_done_callback(self.runners.discard)
        return out

    async def _run(self, task: Task) -> None:
        self.output[task.id] = bytearray()
        proc = await asyncio.create_subprocess_exec(
            *task.spec.command,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,  # so a stop kills the shell's children too
        )
        self.procs[task.id] = proc
        now = time.time()
        status = replace(task.status, state=TaskState.RUNNING, started_at=now, scheduled_at=now)
        await self._set(replace(task, status=status))
        assert proc.stdout is not None
        while chunk := await proc.stdout.read(4096):
            async with self.changed:
                self.output[task.id] += chunk
                self.changed.notify_all()
        code = await proc.wait()
        current = self.tasks[task.id]
        if current.status.state is TaskState.STOPPED:
            return
        state = TaskState.COMPLETED if code == 0 else TaskState.FAILED
        status = replace(current.status, state=state, exit_code=code, finished_at=time.time())
        await self._set(replace(current, status=status))

    async def get(self, ref: str) -> Task:
        if ref in self.tasks:
            return self.tasks[ref]
        for task in reversed(self.tasks.values()):
            if task.spec.name == ref:
                return task
        raise NotFound(f"task {ref!r} not found")

    async def list_tasks(self, query: TaskQuery) -> tuple[list[Task], str]:
        tasks = [
            t
            for t in reversed(self.tasks.values())
            if (not query.states or t.status.state in query.states)
            and all(t.spec.labels.get(k) == v for k, v in query.labels.items())
        ]
        start = int(query.page_token or 0)
        page = tasks[start : start + query.page_size]
        more = start + query.page_size < len(tasks)
        return page, str(start + query.page_size) if more else ""

    async def stop(self, ref: str, reason: str = "") -> Task:
        task = await self.get(ref)
        if task.status.state.final:
            return task
        status = replace(task.status, state=TaskState.STOPPED, finished_at=time.time())
        task = replace(task, status=status)
        await self._set(task)
        proc = self.procs.get(task.id)
        if proc is not None and proc.returncode is None:
            _kill_group(proc)
        return task

    async def wait(
        self, ref: str, until: Callable[[Task], bool], timeout: float | None = None
    ) -> Task:
        async def check() -> Task:
            async with self.changed:
                while not until(task := await self.get(ref)):
                    await self.changed.wait()
                return task

        try:
            return await asyncio.wait_for(check(), timeout)
        except TimeoutError:
            raise DeadlineExceeded(f"task {ref} did not get there in time") from None

    async def watch(
        self, *, from_index: int = 0, kinds: Sequence[str] = ()
    ) -> AsyncIterator[Event]:
        async with self.changed:
            nxt = from_index or len(self.events) + 1
            self.subscriptions += 1
            self.changed.notify_all()
        while True:
            async with self.changed:
                while len(self.events) < nxt:
                    await self.changed.wait()
                batch = self.events[nxt - 1 :]
            for event in batch:
                nxt = event.index + 1
                if not kinds or any(event.kind.startswith(k) for k in kinds):
                    yield event

    async def until(self, check: Callable[[], object], timeout: float = 10) -> None:
        """Wait for ``check()`` to hold; it is re-checked on every change of the core."""
        async with asyncio.timeout(timeout), self.changed:
            await self.changed.wait_for(check)

    async def logs(
        self, ref: str, *, tail: int = 0, follow: bool = False, generation: int = 0
    ) -> AsyncIterator[bytes]:
        task = await self.get(ref)
        sent = 0
        data = bytes(self.output.get(task.id, b""))
        if tail:
            lines = data.splitlines(keepends=True)[-tail:]
            sent = len(data)
            data = b"".join(lines)
            if data:
                yield data
        while True:
            async with self.changed:
                out = self.output.get(task.id, bytearray())
                while follow and len(out) == sent and not self.tasks[task.id].status.state.final:
                    await self.changed.wait()
                    out = self.output.get(task.id, bytearray())
                chunk = bytes(out[sent:])
            if chunk:
                sent += len(chunk)
                yield chunk
            if not follow or (self.tasks[task.id].status.state.final and not chunk):
                return

    async def nodes(self) -> list[Node]:
        return [self.node]

    async def close(self) -> None:
        for proc in self.procs.values():
            if proc.returncode is None:
                _kill_group(proc)
                await proc.wait()
        for runner in list(self.runners):
            runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await runner


def _kill_group(proc: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


class FakeManagerServicer(manager_pb2_grpc.ManagerServiceServicer):
    def __init__(self, core: FakeCore) -> None:
        self.core = core

    @translate_errors
    async def SubmitTask(self, request: Any, context: Any) -> Any:
        new = NewTask(convert.spec_from(request.spec), TaskId(request.id) if request.id else None)
        (task,) = await self.core.submit([new])
        return manager_pb2.SubmitTaskResponse(task=convert.task_to(task))

    @translate_errors
    async def GetTask(self, request: Any, context: Any) -> Any:
        return manager_pb2.GetTaskResponse(task=convert.task_to(await self.core.get(request.id)))

    @translate_errors
    async def ListTasks(self, request: Any, context: Any) -> Any:
        query = TaskQuery(
            states=frozenset(convert.state_from(s) for s in request.states),
            page_size=request.page_size or 100,
            page_token=request.page_token,
        )
        tasks, token = await self.core.list_tasks(query)
        return manager_pb2.ListTasksResponse(
            tasks=[convert.task_to(t) for t in tasks], next_page_token=token
        )

    @translate_errors
    async def StopTask(self, request: Any, context: Any) -> Any:
        task = await self.core.stop(request.id, request.reason)
        return manager_pb2.StopTaskResponse(task=convert.task_to(task))

    @translate_errors
    async def WatchEvents(self, request: Any, context: Any) -> AsyncIterator[Any]:
        async for event in self.core.watch(from_index=request.from_index, kinds=request.kinds):
            yield manager_pb2.WatchEventsResponse(event=convert.event_to(event))

    @translate_errors
    async def GetTaskLogs(self, request: Any, context: Any) -> AsyncIterator[Any]:
        async for chunk in self.core.logs(request.id, tail=request.tail, follow=request.follow):
            yield manager_pb2.GetTaskLogsResponse(data=chunk)

    @translate_errors
    async def ListNodes(self, request: Any, context: Any) -> Any:
        nodes = await self.core.nodes()
        return manager_pb2.ListNodesResponse(nodes=[convert.node_to(n) for n in nodes])

    @translate_errors
    async def GetNode(self, request: Any, context: Any) -> Any:
        for node in await self.core.nodes():
            if request.id in (node.id, node.name):
                return manager_pb2.GetNodeResponse(node=convert.node_to(node))
        raise NotFound(f"node {request.id!r} not found")


@contextlib.asynccontextmanager
async def fake_manager(config: ManagerConfig | None = None) -> AsyncIterator[tuple[str, FakeCore]]:
    """A gRPC server on a free port with ManagerService (fake core) and the real JobService."""
    core = FakeCore()
    extension = jobs.install(core, config or ManagerConfig())

    def add_manager(server: grpc.aio.Server) -> str:
        manager_pb2_grpc.add_ManagerServiceServicer_to_server(FakeManagerServicer(core), server)
        return "corral.v1.ManagerService"

    running = await start_server("127.0.0.1:0", [add_manager, extension.register])
    try:
        yield f"127.0.0.1:{running.port}", core
    finally:
        await running.stop(0)
        await core.close()


COMPAT = ("gateway.compat.cube", "gateway.compat.jobs")


@contextlib.asynccontextmanager
async def gateway_over_fake(
    config: ManagerConfig | None = None,
) -> AsyncIterator[tuple[httpx.AsyncClient, FakeCore]]:
    """The real gateway (in-process uvicorn) in front of the fake manager."""
    from gateway.server import serve

    async with fake_manager(config) as (target, core):
        gw = await serve(target, "127.0.0.1:0", compat_modules=COMPAT)
        try:
            base = f"http://127.0.0.1:{gw.port}"
            async with httpx.AsyncClient(base_url=base, timeout=30) as http:
                yield http, core
        finally:
            await gw.stop()
