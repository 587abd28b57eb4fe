"""``corral.Client``: the typed Python SDK over ``corral.v1``.

Users see domain types (``corral.model``, ``corral.jobs``, ``corral.schedules``,
``corral.environments``) in and out and domain exceptions (``corral.errors``)
on failure, never ``grpc.RpcError`` or a ``corral.v1`` message:
``corral.statuses.error_from`` is the one place a status becomes an exception.

Every unary call has a deadline. Calls that are safe to repeat (reads, stops,
drains, submits with a client-chosen id) are retried with jittered backoff
when the manager is UNAVAILABLE, so a client outlives a manager restart.
Streams that follow (logs ``-f``, events) have no deadline by nature.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from typing import Any, TypeVar

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from corral import convert
from corral.calls.acl import AclCalls
from corral.calls.environments import EnvironmentCalls
from corral.calls.jobs import JobCalls
from corral.calls.schedules import ScheduleCalls
from corral.errors import DeadlineExceeded, NotFound, ValidationError
from corral.explanations import Explanation
from corral.leaders import LeaderChannel
from corral.model import Attempt, Event, Node, Task, TaskSpec, TaskState
from corral.serving import channel
from corral.statuses import error_from
from corral.tls import TlsFiles
from corral.v1 import (
    acl_pb2_grpc,
    environments_pb2_grpc,
    jobs_pb2_grpc,
    manager_pb2,
    manager_pb2_grpc,
    schedules_pb2_grpc,
)

DEFAULT_TARGET = "127.0.0.1:50051"
DEFAULT_TIMEOUT = 10.0
# Status codes worth a retry: the call never reached a live manager.
_RETRYABLE = frozenset({grpc.StatusCode.UNAVAILABLE})

R = TypeVar("R")


class Client(JobCalls, ScheduleCalls, EnvironmentCalls, AclCalls):
    """Async client of a Corral manager. Use as ``async with Client(target) as c``.

    ``target`` may list several managers (``a:50051,b:50051``): calls go to
    the leader, following standbys' hints (``corral.leaders``).
    """

    def __init__(
        self,
        target: str = DEFAULT_TARGET,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        retries: int = 5,
        backoff: float = 0.1,
        tls: TlsFiles | None = None,
        token: str = "",
    ) -> None:
        self.target = target
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self._channel = LeaderChannel(target, opener=lambda t: channel(t, tls=tls, token=token))
        self._manager = manager_pb2_grpc.ManagerServiceStub(self._channel)
        self._jobs = jobs_pb2_grpc.JobServiceStub(self._channel)
        self._schedules = schedules_pb2_grpc.ScheduleServiceStub(self._channel)
        self._environments = environments_pb2_grpc.EnvironmentServiceStub(self._channel)
        self._acl = acl_pb2_grpc.AclServiceStub(self._channel)

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self._channel.close()

    # -- the plumbing every method shares -----------------------------------

    async def call(
        self,
        method: Callable[..., Any],
        request: Any,
        *,
        idempotent: bool = True,
        timeout: float | None = None,
    ) -> Any:
        """One unary call with a deadline, retries when safe, and domain errors."""
        attempts = self.retries + 1 if idempotent else 1
        for attempt in range(attempts):
            try:
                return await method(request, timeout=timeout or self.timeout)
            except grpc.RpcError as err:
                if err.code() not in _RETRYABLE or attempt == attempts - 1:
                    raise error_from(err) from None
            delay = self.backoff * (2**attempt)
            await asyncio.sleep(random.uniform(delay / 2, delay))
        raise AssertionError("unreachable")  # pragma: no cover

    async def stream(
        self, method: Callable[..., Any], request: Any, *, timeout: float | None = None
    ) -> AsyncIterator[Any]:
        """A server stream whose failures surface as domain errors."""
        try:
            async for item in method(request, timeout=timeout):
                yield item
        except grpc.RpcError as err:
            raise error_from(err) from None

    # -- tasks -----------------------------------------------------------------

    async def submit(self, spec: TaskSpec, id: str | None = None) -> Task:
        request = manager_pb2.SubmitTaskRequest(
            spec=convert.spec_to(spec, secrets=True), id=id or ""
        )
        # Without a client-chosen id a retried submit could create the task twice.
        reply = await self.call(self._manager.SubmitTask, request, idempotent=bool(id))
        return convert.task_from(reply.task)

    async def submit_many(self, specs: Iterable[TaskSpec | tuple[TaskSpec, str]]) -> list[Task]:
        """Submit a batch in one call; items are specs or ``(spec, id)`` pairs."""
        items = [s if isinstance(s, tuple) else (s, "") for s in specs]
        request = manager_pb2.SubmitTasksRequest(
            tasks=[
                manager_pb2.SubmitTaskRequest(spec=convert.spec_to(s, secrets=True), id=i)
                for s, i in items
            ]
        )
        idempotent = all(i for _, i in items)
        reply = await self.call(self._manager.SubmitTasks, request, idempotent=idempotent)
        return [convert.task_from(t) for t in reply.tasks]

    async def get_task(self, id: str) -> Task:
        reply = await self.call(self._manager.GetTask, manager_pb2.GetTaskRequest(id=id))
        return convert.task_from(reply.task)

    async def find_task(self, ref: str) -> Task:
        """A task by id, else the newest task with that name (the CLI addresses both)."""
        try:
            return await self.get_task(ref)
        except (NotFound, ValidationError) as err:
            if isinstance(err, ValidationError) and "ambiguous" in err.problem:
                raise  # a prefix of several ids: the message lists them
            named = [t for t in await self.list_tasks() if t.spec.name == ref]
            if not named:
                raise NotFound(f"no task with id or name {ref!r}") from None
            return max(named, key=lambda t: t.status.created_at or 0.0)

    async def list_tasks(
        self,
        *,
        states: Sequence[TaskState] = (),
        node_id: str = "",
        label_selector: str = "",
        page_size: int = 500,
    ) -> list[Task]:
        """Every matching task, following the pages."""
        tasks: list[Task] = []
        token = ""
        while True:
            request = manager_pb2.ListTasksRequest(
                states=[convert.state_to(s) for s in states],
                node_id=node_id,
                label_selector=label_selector,
                page_size=page_size,
                page_token=token,
            )
            reply = await self.call(self._manager.ListTasks, request)
            tasks.extend(convert.task_from(t) for t in reply.tasks)
            token = reply.next_page_token
            if not token:
                return tasks

    async def wait(
        self, id: str, *, timeout: float = 60.0, running: bool = False, poll: float = 0.1
    ) -> Task:
        """The task once it is final (or, with ``running``, once it runs); DeadlineExceeded
        after ``timeout`` seconds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            task = await self.get_task(id)
            state = task.status.state
            if state.final or (running and state is TaskState.RUNNING):
                return task
            if loop.time() >= deadline:
                raise DeadlineExceeded(f"task {id} still {state.value} after {timeout:g}s")
            await asyncio.sleep(poll)

    async def stop_task(self, id: str, reason: str = "") -> Task:
        request = manager_pb2.StopTaskRequest(id=id, reason=reason)
        reply = await self.call(self._manager.StopTask, request)
        return convert.task_from(reply.task)

    async def logs(
        self, id: str, *, tail: int = 0, follow: bool = False, generation: int = 0
    ) -> AsyncIterator[bytes]:
        """A task's output as it arrives; ``tail`` keeps the last N lines (0 = all)."""
        request = manager_pb2.GetTaskLogsRequest(
            id=id, tail=tail, follow=follow, generation=generation
        )
        # A finite read gets a deadline; a follow lasts as long as the task writes.
        timeout = None if follow else max(self.timeout, 30.0)
        async for chunk in self.stream(self._manager.GetTaskLogs, request, timeout=timeout):
            yield bytes(chunk.data)

    async def merged_logs(
        self, selector: str = "", *, tail: int = 0, follow: bool = False
    ) -> AsyncIterator[bytes]:
        """Whole lines of every task matching ``selector`` ("k=v,..."), prefixed with its name."""
        request = manager_pb2.GetLogsRequest(selector=selector, tail=tail, follow=follow)
        timeout = None if follow else max(self.timeout, 30.0)
        async for chunk in self.stream(self._manager.GetLogs, request, timeout=timeout):
            yield bytes(chunk.data)

    async def watch_events(
        self, from_index: int = 0, *, kinds: Sequence[str] = ()
    ) -> AsyncIterator[Event]:
        """Events from index ``from_index`` on (0 = only new ones), then live ones."""
        request = manager_pb2.WatchEventsRequest(from_index=from_index, kinds=list(kinds))
        async for reply in self.stream(self._manager.WatchEvents, request):
            yield convert.event_from(reply.event)

    # -- nodes -----------------------------------------------------------------

    async def list_nodes(self) -> list[Node]:
        reply = await self.call(self._manager.ListNodes, manager_pb2.ListNodesRequest())
        return [convert.node_from(n) for n in reply.nodes]

    async def get_node(self, id: str) -> Node:
        reply = await self.call(self._manager.GetNode, manager_pb2.GetNodeRequest(id=id))
        return convert.node_from(reply.node)

    async def find_node(self, ref: str) -> Node:
        """A node by id, else by name."""
        try:
            return await self.get_node(ref)
        except (NotFound, ValidationError):
            for node in await self.list_nodes():
                if node.name == ref:
                    return node
            raise NotFound(f"no node with id or name {ref!r}") from None

    async def task_attempts(self, id: str) -> list[Attempt]:
        """The task's attempts, oldest first (the current one last)."""
        request = manager_pb2.ListTaskAttemptsRequest(id=id)
        reply = await self.call(self._manager.ListTaskAttempts, request)
        return [convert.attempt_from(a) for a in reply.attempts]

    async def explain_task(self, id: str) -> Explanation:
        """Per node, whether the task fits and why not, and where it would go now."""
        request = manager_pb2.ExplainTaskRequest(id=id)
        return convert.explanation_from(await self.call(self._manager.ExplainTask, request))

    async def drain_node(self, id: str) -> Node:
        reply = await self.call(self._manager.DrainNode, manager_pb2.DrainNodeRequest(id=id))
        return convert.node_from(reply.node)

    async def undrain_node(self, id: str) -> Node:
        request = manager_pb2.UndrainNodeRequest(id=id)
        reply = await self.call(self._manager.UndrainNode, request)
        return convert.node_from(reply.node)

    # -- health ----------------------------------------------------------------

    async def healthy(self, service: str = "", *, timeout: float = 1.0) -> bool:
        """True when a manager answers SERVING (the leader, when several are listed); no
        retries: callers poll."""
        for target in dict.fromkeys((self._channel.current, *self._channel.targets)):
            health = health_pb2_grpc.HealthStub(self._channel.channel(target))
            try:
                reply = await health.Check(
                    health_pb2.HealthCheckRequest(service=service), timeout=timeout
                )
            except grpc.RpcError:
                continue
            if reply.status == health_pb2.HealthCheckResponse.SERVING:
                self._channel.current = target
                return True
        return False


async def wait_healthy(
    target: str, *, timeout: float, service: str = "", tls: TlsFiles | None = None
) -> bool:
    """Poll a gRPC server's health until SERVING or ``timeout`` seconds pass."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    async with Client(target, tls=tls) as client:
        while loop.time() < deadline:
            if await client.healthy(service, timeout=min(1.0, timeout)):
                return True
            await asyncio.sleep(0.1)
    return False


def run_sync(coro_fn: Callable[[Client], Any], target: str = DEFAULT_TARGET) -> Any:
    """The sync facade: ``run_sync(lambda c: c.list_nodes())`` from plain code."""

    async def go() -> Any:
        async with Client(target) as client:
            return await coro_fn(client)

    return asyncio.run(go())
