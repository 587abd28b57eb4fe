"""JobService: unpack, call ``Jobs``, pack; ``translate_errors`` makes statuses."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, TypeAlias

import grpc

from corral.convert.jobs import job_to
from corral.serving import translate_errors
from corral.v1 import jobs_pb2, jobs_pb2_grpc
from manager.jobs.lifecycle import Jobs

Context: TypeAlias = "grpc.aio.ServicerContext[Any, Any]"


class JobServicer(jobs_pb2_grpc.JobServiceServicer):
    def __init__(self, jobs: Jobs) -> None:
        self.jobs = jobs

    @translate_errors
    async def RunJob(
        self, request: jobs_pb2.RunJobRequest, context: Context
    ) -> jobs_pb2.RunJobResponse:
        cmd = request.cmd if request.HasField("cmd") else None
        return jobs_pb2.RunJobResponse(job=job_to(await self.jobs.run(cmd, request.name)))

    @translate_errors
    async def GetJob(
        self, request: jobs_pb2.GetJobRequest, context: Context
    ) -> jobs_pb2.GetJobResponse:
        return jobs_pb2.GetJobResponse(job=job_to(await self.jobs.get(request.name)))

    @translate_errors
    async def ListJobs(
        self, request: jobs_pb2.ListJobsRequest, context: Context
    ) -> jobs_pb2.ListJobsResponse:
        return jobs_pb2.ListJobsResponse(jobs=[job_to(j) for j in await self.jobs.list()])

    @translate_errors
    async def GetJobLogs(
        self, request: jobs_pb2.GetJobLogsRequest, context: Context
    ) -> AsyncIterator[jobs_pb2.GetJobLogsResponse]:
        chunks = self.jobs.logs(request.name, tail=request.tail, follow=request.follow)
        async for chunk in chunks:
            yield jobs_pb2.GetJobLogsResponse(data=chunk)


def register(jobs: Jobs, server: grpc.aio.Server) -> str:
    jobs_pb2_grpc.add_JobServiceServicer_to_server(JobServicer(jobs), server)
    return str(jobs_pb2.DESCRIPTOR.services_by_name["JobService"].full_name)
