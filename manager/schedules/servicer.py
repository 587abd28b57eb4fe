"""ScheduleService: unpack, call ``ScheduleLoops``, pack; ``translate_errors`` makes statuses.

A schedule belongs to the namespace of the token that created it (``default``
unless the token is scoped; a task action's template may name it, as a
submission may). A caller scoped to another namespace is answered for it
exactly as for a name that does not exist (``manager.namespaces``).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, TypeAlias

import grpc

from corral.convert import schedules as convert
from corral.errors import NotFound
from corral.schedules import Schedule, TaskAction
from corral.serving import translate_errors
from corral.v1 import schedules_pb2 as pb
from corral.v1 import schedules_pb2_grpc
from manager import namespaces
from manager.acl import caller
from manager.schedules.loops import ScheduleLoops

Context: TypeAlias = "grpc.aio.ServicerContext[Any, Any]"


def _visible(schedule: Schedule) -> bool:
    return caller().sees(schedule.spec.namespace or namespaces.DEFAULT)


class ScheduleServicer(schedules_pb2_grpc.ScheduleServiceServicer):
    def __init__(self, loops: ScheduleLoops) -> None:
        self._s = loops

    async def _checked(self, name: str) -> Schedule:
        """The schedule when the caller may see it; otherwise what an unknown name gets."""
        schedule = await self._s.get(name)
        if not _visible(schedule):
            raise NotFound(f"no schedule named {name!r}")
        return schedule

    @translate_errors
    async def CreateSchedule(
        self, request: pb.CreateScheduleRequest, context: Context
    ) -> pb.CreateScheduleResponse:
        spec = convert.spec_of(request.schedule)
        asked = spec.action.template.namespace if isinstance(spec.action, TaskAction) else ""
        spec = replace(spec, namespace=namespaces.scoped(asked) or namespaces.DEFAULT)
        created = await self._s.create(spec)
        return pb.CreateScheduleResponse(schedule=convert.schedule_to(created))

    @translate_errors
    async def GetSchedule(
        self, request: pb.GetScheduleRequest, context: Context
    ) -> pb.GetScheduleResponse:
        schedule = await self._checked(request.name)
        return pb.GetScheduleResponse(schedule=convert.schedule_to(schedule))

    @translate_errors
    async def ListSchedules(
        self, request: pb.ListSchedulesRequest, context: Context
    ) -> pb.ListSchedulesResponse:
        return pb.ListSchedulesResponse(
            schedules=[convert.schedule_to(s) for s in await self._s.all() if _visible(s)]
        )

    @translate_errors
    async def DeleteSchedule(
        self, request: pb.DeleteScheduleRequest, context: Context
    ) -> pb.DeleteScheduleResponse:
        await self._checked(request.name)
        await self._s.delete(request.name)
        return pb.DeleteScheduleResponse()

    @translate_errors
    async def StartSchedule(
        self, request: pb.StartScheduleRequest, context: Context
    ) -> pb.StartScheduleResponse:
        await self._checked(request.name)
        started = await self._s.start(request.name)
        return pb.StartScheduleResponse(schedule=convert.schedule_to(started))

    @translate_errors
    async def StopSchedule(
        self, request: pb.StopScheduleRequest, context: Context
    ) -> pb.StopScheduleResponse:
        await self._checked(request.name)
        stopped = await self._s.stop(request.name)
        return pb.StopScheduleResponse(schedule=convert.schedule_to(stopped))

    @translate_errors
    async def RunScheduleOnce(
        self, request: pb.RunScheduleOnceRequest, context: Context
    ) -> pb.RunScheduleOnceResponse:
        await self._checked(request.name)
        run = await self._s.run_once(request.name)
        return pb.RunScheduleOnceResponse(run=convert.run_to(run))

    @translate_errors
    async def ListRuns(self, request: pb.ListRunsRequest, context: Context) -> pb.ListRunsResponse:
        await self._checked(request.name)
        return pb.ListRunsResponse(
            runs=[convert.run_to(r) for r in await self._s.runs(request.name)]
        )

    @translate_errors
    async def GetRun(self, request: pb.GetRunRequest, context: Context) -> pb.GetRunResponse:
        await self._checked(request.name)
        return pb.GetRunResponse(
            run=convert.run_to(await self._s.get_run(request.name, request.run_id))
        )


def register(loops: ScheduleLoops, server: grpc.aio.Server) -> str:
    schedules_pb2_grpc.add_ScheduleServiceServicer_to_server(ScheduleServicer(loops), server)
    return str(pb.DESCRIPTOR.services_by_name["ScheduleService"].full_name)
