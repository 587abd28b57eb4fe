"""An in-memory ManagerService for client and CLI tests.

It is a real ``grpc.aio`` server started with ``corral.serving.start_server``
and its servicer uses ``translate_errors``, so errors travel exactly as the
real manager sends them (rich status with a BadRequest detail). A task's
fate is steered by its ``fate`` label: ``running`` (default), ``pending``
(never fits: stays PENDING with a reason), ``reject`` (FAILED before it
ran), ``fails`` (ran, then FAILED with exit code 3).
"""

from __future__ import annotations

import asyncio
import dataclasses
import threading
import time
from collections.abc import AsyncIterator
from typing import Any

import grpc

from corral import convert
from corral.errors import NotFound, Unavailable
from corral.model import Event, Node, NodeId, NodeStatus, Resources, Task, TaskId, TaskState
from corral.serving import RunningServer, start_server, translate_errors
from corral.v1 import manager_pb2, manager_pb2_grpc
from corral.validation import validate_task_spec

NODE = Node(
    id=NodeId("node-1"),
    name="alpha",
    address="127.0.0.1:1",
    capacity=Resources(4, 8 << 30, 100 << 30),
    runtimes=("process", "fake"),
)


class FakeManager(manager_pb2_grpc.ManagerServiceServicer):
    def __init__(self) -> None:
        self.tasks: dict[str, Task] = {}
        self.nodes: dict[str, Node] = {NODE.id: NODE}
        self.calls: dict[str, int] = {}
        # Fail this many calls of a method with UNAVAILABLE first (retry tests).
        self.unavailable: dict[str, int] = {}
        self.delay = 0.0
        self.logs = b"hello\n"

    def _enter(self, method: str) -> None:
        self.calls[method] = self.calls.get(method, 0) + 1
        if self.unavailable.get(method, 0) > 0:
            self.unavailable[method] -= 1
            raise Unavailable("manager is restarting")

    def _task(self, ref: str) -> Task:
        if ref not in self.tasks:
            raise NotFound(f"task {ref} not found")
        return self.tasks[ref]

    @translate_errors
    async def SubmitTask(self, request: Any, context: Any) -> Any:
        self._enter("SubmitTask")
        spec = validate_task_spec(convert.spec_from(request.spec))
        task_id = request.id or f"t{len(self.tasks) + 1}"
        now = time.time()
        fate = spec.labels.get("fate", "running")
        status = {
            "running": dataclasses.replace(
                Task(TaskId(""), spec).status,
                state=TaskState.RUNNING,
                node_id=NODE.id,
                started_at=now,
            ),
            "pending": dataclasses.replace(
                Task(TaskId(""), spec).status, message="no node fits: cpu"
            ),
            "reject": dataclasses.replace(
                Task(TaskId(""), spec).status, state=TaskState.FAILED, message="no such image"
            ),
            "fails": dataclasses.replace(
                Task(TaskId(""), spec).status,
                state=TaskState.FAILED,
                started_at=now,
                exit_code=3,
                message="exit code 3",
            ),
        }[fate]
        task = Task(TaskId(task_id), spec, dataclasses.replace(status, created_at=now))
        self.tasks[task_id] = task
        return manager_pb2.SubmitTaskResponse(task=convert.task_to(task))

    @translate_errors
    async def GetTask(self, request: Any, context: Any) -> Any:
        self._enter("GetTask")
        if self.delay:
            await asyncio.sleep(self.delay)
        return manager_pb2.GetTaskResponse(task=convert.task_to(self._task(request.id)))

    @translate_errors
    async def ListTasks(self, request: Any, context: Any) -> Any:
        self._enter("ListTasks")
        tasks = sorted(self.tasks.values(), key=lambda t: t.id)
        if request.states:
            wanted = {convert.state_from(s) for s in request.states}
            tasks = [t for t in tasks if t.status.state in wanted]
        start = int(request.page_token or 0)
        size = request.page_size or 100
        page = tasks[start : start + size]
        token = str(start + size) if start + size < len(tasks) else ""
        return manager_pb2.ListTasksResponse(
            tasks=[convert.task_to(t) for t in page], next_page_token=token
        )

    @translate_errors
    async def StopTask(self, request: Any, context: Any) -> Any:
        self._enter("StopTask")
        task = self._task(request.id)
        status = dataclasses.replace(task.status, state=TaskState.STOPPED, message=request.reason)
        self.tasks[task.id] = dataclasses.replace(task, status=status)
        return manager_pb2.StopTaskResponse(task=convert.task_to(self.tasks[task.id]))

    @translate_errors
    async def GetTaskLogs(self, request: Any, context: Any) -> AsyncIterator[Any]:
        self._enter("GetTaskLogs")
        self._task(request.id)
        data = self.logs
        if request.tail:
            data = b"".join(data.splitlines(keepends=True)[-request.tail :])
        yield manager_pb2.GetTaskLogsResponse(data=data)

    @translate_errors
    async def WatchEvents(self, request: Any, context: Any) -> AsyncIterator[Any]:
        self._enter("WatchEvents")
        for i, task in enumerate(self.tasks.values(), start=1):
            if request.from_index and i >= request.from_index:
                event = Event(index=i, time=time.time(), kind="task.updated", task=task)
                yield manager_pb2.WatchEventsResponse(event=convert.event_to(event))

    @translate_errors
    async def ListNodes(self, request: Any, context: Any) -> Any:
        self._enter("ListNodes")
        return manager_pb2.ListNodesResponse(
            nodes=[convert.node_to(n) for n in self.nodes.values()]
        )

    @translate_errors
    async def GetNode(self, request: Any, context: Any) -> Any:
        self._enter("GetNode")
        if request.id not in self.nodes:
            raise NotFound(f"node {request.id} not found")
        return manager_pb2.GetNodeResponse(node=convert.node_to(self.nodes[request.id]))

    @translate_errors
    async def DrainNode(self, request: Any, context: Any) -> Any:
        self._enter("DrainNode")
        if request.id not in self.nodes:
            raise NotFound(f"node {request.id} not found")
        node = dataclasses.replace(self.nodes[request.id], status=NodeStatus.DRAINING)
        self.nodes[node.id] = node
        return manager_pb2.DrainNodeResponse(node=convert.node_to(node))


async def serve(fake: FakeManager) -> RunningServer:
    def add(server: grpc.aio.Server) -> str:
        manager_pb2_grpc.add_ManagerServiceServicer_to_server(fake, server)
        return str(manager_pb2.DESCRIPTOR.services_by_name["ManagerService"].full_name)

    return await start_server("127.0.0.1:0", [add])


class ThreadedFake:
    """The fake served from its own thread and loop, for sync callers (CliRunner)."""

    def __init__(self) -> None:
        self.fake = FakeManager()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.server = asyncio.run_coroutine_threadsafe(serve(self.fake), self.loop).result(10)
        self.target = f"127.0.0.1:{self.server.port}"

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self.server.stop(0), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()
