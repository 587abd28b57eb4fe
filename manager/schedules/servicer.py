"""ScheduleService: unpack, call ``ScheduleLoops``, pack; ``translate_errors`` makes statuses."""

from __future__ import annotations

from typing import Any, TypeAlias

import grpc

from corral.convert import schedules as convert
from corral.serving import translate_errors
from corral.v1 import schedules_pb2 as pb
from corral.v1 import schedules_pb2_grpc
from manager.schedules.loops import ScheduleLoops

Context: TypeAlias = "grpc.aio.ServicerContext[Any, Any]"


class ScheduleServicer(schedules_pb2_grpc.ScheduleServiceServicer):
    def __init__(self, loops: ScheduleLoops) -> None:
        self._s = loops

    @translate_errors
    async def CreateSchedule(
        self, request: pb.CreateScheduleRequest, context: Context
    ) -> pb.CreateScheduleResponse:
        created = await self._s.create(convert.spec_of(request.schedule))
        return pb.CreateScheduleResponse(schedule=convert.schedule_to(created))

    @translate_errors
    async def GetSchedule(
        self, request: pb.GetScheduleRequest, context: Context
    ) -> pb.GetScheduleResponse:
        return pb.GetScheduleResponse(schedule=convert.schedule_to(await self._s.get(request.name)))

    @translate_errors
    async def ListSchedules(
        self, request: pb.ListSchedulesRequest, context: Context
    ) -> pb.ListSchedulesResponse:
        return pb.ListSchedulesResponse(
            schedules=[convert.schedule_to(s) for s in await self._s.all()]
        )

    @translate_errors
    async def DeleteSchedule(
        self, request: pb.DeleteScheduleRequest, context: Context
    ) -> pb.DeleteScheduleResponse:
        await self._s.delete(request.name)
        return pb.DeleteScheduleResponse()

    @translate_errors
    async def StartSchedule(
        self, request: pb.StartScheduleRequest, context: Context
    ) -> pb.StartScheduleResponse:
        started = await self._s.start(request.name)
        return pb.StartScheduleResponse(schedule=convert.schedule_to(started))

    @translate_errors
    async def StopSchedule(
        self, request: pb.StopScheduleRequest, context: Context
    ) -> pb.StopScheduleResponse:
        stopped = await self._s.stop(request.name)
        return pb.StopScheduleResponse(schedule=convert.schedule_to(stopped))

    @translate_errors
    async def RunScheduleOnce(
        self, request: pb.RunScheduleOnceRequest, context: Context
    ) -> pb.RunScheduleOnceResponse:
        run = await self._s.run_once(request.name)
        return pb.RunScheduleOnceResponse(run=convert.run_to(run))

    @translate_errors
    async def ListRuns(self, request: pb.ListRunsRequest, context: Context) -> pb.ListRunsResponse:
        return pb.ListRunsResponse(
            runs=[convert.run_to(r) for r in await self._s.runs(request.name)]
        )

    @translate_errors
    async def GetRun(self, request: pb.GetRunRequest, context: Context) -> pb.GetRunResponse:
        return pb.GetRunResponse(
            run=convert.run_to(await self._s.get_run(request.name, request.run_id))
        )


def register(loops: ScheduleLoops, server: grpc.aio.Server) -> str:
    schedules_pb2_grpc.add_ScheduleServiceServicer_to_server(ScheduleServicer(loops), server)
    return str(pb.DESCRIPTOR.services_by_name["ScheduleService"].full_name)
