"""``corral.Client``'s JobService calls."""

from __future__ import annotations

from collections.abc import AsyncIterator

from corral.calls.base import Calls
from corral.convert.jobs import job_from
from corral.jobs import Job
from corral.v1 import jobs_pb2, jobs_pb2_grpc


class JobCalls(Calls):
    _jobs: jobs_pb2_grpc.JobServiceStub

    async def run_job(self, cmd: str | None = None, *, name: str = "") -> Job:
        """Run ``sh -c cmd`` to completion (the manager's default command when None)."""
        request = jobs_pb2.RunJobRequest(name=name)
        if cmd is not None:
            request.cmd = cmd
        reply = await self.call(self._jobs.RunJob, request, idempotent=False)
        return job_from(reply.job)

    async def get_job(self, name: str) -> Job:
        reply = await self.call(self._jobs.GetJob, jobs_pb2.GetJobRequest(name=name))
        return job_from(reply.job)

    async def list_jobs(self) -> list[Job]:
        reply = await self.call(self._jobs.ListJobs, jobs_pb2.ListJobsRequest())
        return [job_from(j) for j in reply.jobs]

    async def job_logs(
        self, name: str, *, tail: int = 0, follow: bool = False
    ) -> AsyncIterator[bytes]:
        """A job's output (kept after it ends); ``follow`` lasts until it ends."""
        request = jobs_pb2.GetJobLogsRequest(name=name, follow=follow, tail=tail)
        async for chunk in self.stream(self._jobs.GetJobLogs, request):
            yield bytes(chunk.data)
