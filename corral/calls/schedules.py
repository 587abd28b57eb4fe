"""``corral.Client``'s ScheduleService calls."""

from __future__ import annotations

from corral.calls.base import Calls
from corral.convert.schedules import run_from, schedule_from, spec_message
from corral.schedules import Run, Schedule, ScheduleSpec
from corral.v1 import schedules_pb2, schedules_pb2_grpc

# RunScheduleOnce answers when the run is over: endpoints' timeouts plus placement.
SCHEDULE_RUN_TIMEOUT = 600.0


class ScheduleCalls(Calls):
    _schedules: schedules_pb2_grpc.ScheduleServiceStub

    async def create_schedule(self, spec: ScheduleSpec) -> Schedule:
        request = schedules_pb2.CreateScheduleRequest(schedule=spec_message(spec))
        reply = await self.call(self._schedules.CreateSchedule, request, idempotent=False)
        return schedule_from(reply.schedule)

    async def get_schedule(self, name: str) -> Schedule:
        request = schedules_pb2.GetScheduleRequest(name=name)
        return schedule_from((await self.call(self._schedules.GetSchedule, request)).schedule)

    async def list_schedules(self) -> list[Schedule]:
        request = schedules_pb2.ListSchedulesRequest()
        reply = await self.call(self._schedules.ListSchedules, request)
        return [schedule_from(s) for s in reply.schedules]

    async def delete_schedule(self, name: str) -> None:
        """Delete a schedule and its runs (its loop and run in progress are stopped)."""
        request = schedules_pb2.DeleteScheduleRequest(name=name)
        await self.call(self._schedules.DeleteSchedule, request, idempotent=False)

    async def start_schedule(self, name: str) -> Schedule:
        request = schedules_pb2.StartScheduleRequest(name=name)
        reply = await self.call(self._schedules.StartSchedule, request, idempotent=False)
        return schedule_from(reply.schedule)

    async def stop_schedule(self, name: str) -> Schedule:
        request = schedules_pb2.StopScheduleRequest(name=name)
        reply = await self.call(self._schedules.StopSchedule, request, idempotent=False)
        return schedule_from(reply.schedule)

    async def run_schedule_once(self, name: str, *, timeout: float = SCHEDULE_RUN_TIMEOUT) -> Run:
        """Run a (not running) schedule's action now; the run once it is over."""
        request = schedules_pb2.RunScheduleOnceRequest(name=name)
        reply = await self.call(
            self._schedules.RunScheduleOnce, request, idempotent=False, timeout=timeout
        )
        return run_from(reply.run)

    async def list_runs(self, name: str) -> list[Run]:
        """A schedule's kept runs, newest first."""
        reply = await self.call(self._schedules.ListRuns, schedules_pb2.ListRunsRequest(name=name))
        return [run_from(r) for r in reply.runs]

    async def get_run(self, name: str, run_id: str) -> Run:
        request = schedules_pb2.GetRunRequest(name=name, run_id=run_id)
        return run_from((await self.call(self._schedules.GetRun, request)).run)
