"""ManagerService over gRPC: convert, call the core, convert back.

Errors become gRPC statuses in one place (``corral.serving.translate_errors``).
The worker stream (``Connect``) is handed to ``manager.sessions``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any, TypeAlias

import grpc
from google.protobuf.internal.containers import RepeatedCompositeFieldContainer

from corral import convert
from corral.convert.statuswire import status_bytes
from corral.errors import ValidationError
from corral.model import Event, Task, TaskId, TaskState
from corral.serving import translate_errors
from corral.v1 import manager_pb2, manager_pb2_grpc, types_pb2
from manager import namespaces, traces
from manager.acl import Tokens, caller
from manager.acl.authorizing import credential_of
from manager.attempts import task_attempts
from manager.control import NewTask, TaskQuery
from manager.core import TaskManager
from manager.explaining import explain_task
from manager.logmerging import merged_logs
from manager.sessions import WorkerSession
from manager.spectemplates import SpecTemplates
from manager.wirecache import SpecCache
from manager.workers import HelloInfo

Context: TypeAlias = "grpc.aio.ServicerContext[Any, Any]"


Specs: TypeAlias = SpecCache[types_pb2.TaskSpec]


def new_task(
    request: manager_pb2.SubmitTaskRequest, specs: Specs, templates: SpecTemplates
) -> NewTask:
    spec = templates.convert(request.spec)
    # Write-only: the message kept for replies, events and the store never holds secrets.
    request.spec.ClearField("secret_env")
    request.spec.ClearField("sealed_secret_env")
    # The cached message is what every reply shows: it must name the runtime the
    # task runs on, not the empty string the client may have left (the default).
    request.spec.runtime = spec.runtime
    specs.remember(spec, request.spec)
    return NewTask(spec=spec, id=TaskId(request.id) if request.id else None)


def fill_task(out: types_pb2.Task, task: Task, specs: Specs) -> None:
    """Write ``task`` into ``out``, a field of the response being built.

    A message built apart and then put in a response is copied (spec and
    status) into it: for a batch of thousands that copy cost a third of the reply.
    """
    out.id = task.id
    # The spec's message comes from the cache: usually the very one the client sent.
    out.spec.CopyFrom(specs.message(task.spec))
    # Parsing the status's wire bytes is a quarter of building and copying the message.
    out.status.ParseFromString(status_bytes(task.status))


def add_tasks(
    field: RepeatedCompositeFieldContainer[types_pb2.Task], tasks: list[Task], specs: Specs
) -> None:
    for task in tasks:
        fill_task(field.add(), task, specs)


def fill_event(out: types_pb2.Event, event: Event, specs: Specs) -> None:
    if event.task is None:
        out.CopyFrom(convert.event_to(event))
        return
    out.index, out.kind, out.message = event.index, event.kind, event.message
    out.actor = event.actor
    if (time := convert.timestamp(event.time)) is not None:
        out.time.CopyFrom(time)
    fill_task(out.task, event.task, specs)


def label_selector(text: str) -> dict[str, str]:
    """``k=v,k2=v2`` as a dict; anything else names the field."""
    labels: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, sep, value = part.partition("=")
        if not sep or not key:
            raise ValidationError("label_selector", f"{part!r} is not key=value")
        labels[key.strip()] = value.strip()
    return labels


def _selector(text: str) -> dict[str, str]:
    try:
        return label_selector(text)
    except ValidationError as err:
        raise ValidationError("selector", err.problem) from None


def states_from(numbers: Sequence[int]) -> frozenset[TaskState]:
    for i, number in enumerate(numbers):
        if number == 0:
            raise ValidationError(f"states[{i}]", "must be a task state, not UNSPECIFIED")
    return frozenset(convert.state_from(n) for n in numbers)


class ManagerServicer(manager_pb2_grpc.ManagerServiceServicer):
    def __init__(self, core: TaskManager, specs: Specs, tokens: Tokens | None = None) -> None:
        self.core = core
        self.specs = specs
        self.tokens = tokens
        self.templates = SpecTemplates()

    @translate_errors
    async def SubmitTask(
        self, request: manager_pb2.SubmitTaskRequest, context: Context
    ) -> manager_pb2.SubmitTaskResponse:
        request.spec.namespace = namespaces.scoped(request.spec.namespace)
        (task,) = await self.core.submit([new_task(request, self.specs, self.templates)], prefix="")
        traces.remember([task])
        response = manager_pb2.SubmitTaskResponse()
        fill_task(response.task, task, self.specs)
        return response

    @translate_errors
    async def SubmitTasks(
        self, request: manager_pb2.SubmitTasksRequest, context: Context
    ) -> manager_pb2.SubmitTasksResponse:
        for r in request.tasks:
            r.spec.namespace = namespaces.scoped(r.spec.namespace)
        tasks = await self.core.submit(
            [new_task(r, self.specs, self.templates) for r in request.tasks]
        )
        traces.remember(tasks)
        response = manager_pb2.SubmitTasksResponse()
        add_tasks(response.tasks, tasks, self.specs)
        return response

    @translate_errors
    async def GetTask(
        self, request: manager_pb2.GetTaskRequest, context: Context
    ) -> manager_pb2.GetTaskResponse:
        response = manager_pb2.GetTaskResponse()
        task = namespaces.checked(await self.core.get(request.id), request.id)
        fill_task(response.task, task, self.specs)
        return response

    @translate_errors
    async def ListTasks(
        self, request: manager_pb2.ListTasksRequest, context: Context
    ) -> manager_pb2.ListTasksResponse:
        query = TaskQuery(
            states=states_from(request.states),
            node_id=request.node_id,
            labels=label_selector(request.label_selector),
            page_size=request.page_size,
            page_token=request.page_token,
        )
        tasks, token = await self.core.list_tasks(query)
        if caller().namespace:
            tasks = [t for t in tasks if namespaces.visible(t)]
        response = manager_pb2.ListTasksResponse(next_page_token=token)
        add_tasks(response.tasks, tasks, self.specs)
        return response

    @translate_errors
    async def StopTask(
        self, request: manager_pb2.StopTaskRequest, context: Context
    ) -> manager_pb2.StopTaskResponse:
        namespaces.checked(await self.core.get(request.id), request.id)
        task = await self.core.stop(request.id, request.reason)
        response = manager_pb2.StopTaskResponse()
        fill_task(response.task, task, self.specs)
        return response

    @translate_errors
    async def ExplainTask(
        self, request: manager_pb2.ExplainTaskRequest, context: Context
    ) -> manager_pb2.ExplainTaskResponse:
        namespaces.checked(await self.core.get(request.id), request.id)
        return convert.explanation_to(await explain_task(self.core, request.id))

    @translate_errors
    async def ListTaskAttempts(
        self, request: manager_pb2.ListTaskAttemptsRequest, context: Context
    ) -> manager_pb2.ListTaskAttemptsResponse:
        namespaces.checked(await self.core.get(request.id), request.id)
        attempts = await task_attempts(self.core, request.id)
        return manager_pb2.ListTaskAttemptsResponse(
            attempts=[convert.attempt_to(a) for a in attempts]
        )

    @translate_errors
    async def WatchEvents(
        self, request: manager_pb2.WatchEventsRequest, context: Context
    ) -> AsyncIterator[manager_pb2.WatchEventsResponse]:
        scoped = bool(caller().namespace)
        async for event in self.core.watch(
            from_index=request.from_index, kinds=list(request.kinds)
        ):
            if scoped and not namespaces.event_visible(event):
                continue
            response = manager_pb2.WatchEventsResponse()
            fill_event(response.event, event, self.specs)
            yield response

    @translate_errors
    async def GetTaskLogs(
        self, request: manager_pb2.GetTaskLogsRequest, context: Context
    ) -> AsyncIterator[manager_pb2.GetTaskLogsResponse]:
        namespaces.checked(await self.core.get(request.id), request.id)
        async for chunk in self.core.logs(
            request.id, tail=request.tail, follow=request.follow, generation=request.generation
        ):
            yield manager_pb2.GetTaskLogsResponse(data=chunk)

    @translate_errors
    async def GetLogs(
        self, request: manager_pb2.GetLogsRequest, context: Context
    ) -> AsyncIterator[manager_pb2.GetLogsResponse]:
        selector = _selector(request.selector)
        async for line in merged_logs(
            self.core, selector, tail=request.tail, follow=request.follow
        ):
            yield manager_pb2.GetLogsResponse(data=line)

    @translate_errors
    async def ListNodes(
        self, request: manager_pb2.ListNodesRequest, context: Context
    ) -> manager_pb2.ListNodesResponse:
        nodes = await self.core.nodes()
        return manager_pb2.ListNodesResponse(nodes=[convert.node_to(n) for n in nodes])

    @translate_errors
    async def GetNode(
        self, request: manager_pb2.GetNodeRequest, context: Context
    ) -> manager_pb2.GetNodeResponse:
        return manager_pb2.GetNodeResponse(node=convert.node_to(await self.core.node(request.id)))

    @translate_errors
    async def DrainNode(
        self, request: manager_pb2.DrainNodeRequest, context: Context
    ) -> manager_pb2.DrainNodeResponse:
        return manager_pb2.DrainNodeResponse(
            node=convert.node_to(await self.core.drain(request.id))
        )

    @translate_errors
    async def UndrainNode(
        self, request: manager_pb2.UndrainNodeRequest, context: Context
    ) -> manager_pb2.UndrainNodeResponse:
        return manager_pb2.UndrainNodeResponse(
            node=convert.node_to(await self.core.undrain(request.id))
        )

    # The session writes with context.write from its sender loop while its reader
    # consumes the requests, so this handler returns nothing instead of yielding.
    @translate_errors
    async def Connect(  # type: ignore[override]
        self, request_iterator: AsyncIterator[manager_pb2.WorkerMessage], context: Context
    ) -> None:
        session = WorkerSession(self.core, context, self.specs, admit=self._admit(context))
        await session.run()

    def _admit(self, context: Context) -> Callable[[HelloInfo], None] | None:
        """Node identity: a node id belongs to the credential of its first Hello."""
        tokens, credential = self.tokens, credential_of(context)
        if tokens is None or not credential:
            return None
        return lambda hello: tokens.bind_node(hello.node_id, credential)


def register(
    core: TaskManager, specs: Specs, tokens: Tokens | None = None
) -> Callable[[grpc.aio.Server], str]:
    def add(server: grpc.aio.Server) -> str:
        servicer = ManagerServicer(core, specs, tokens)
        manager_pb2_grpc.add_ManagerServiceServicer_to_server(servicer, server)
        return str(manager_pb2.DESCRIPTOR.services_by_name["ManagerService"].full_name)

    return add
