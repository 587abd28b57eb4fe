"""``corral run --attach``: stream a task's output and exit with its exit code, like ``docker run``.

The output of each attempt is followed in turn (a task restarted by its
policy shows every attempt's output), until the task ends. The exit code is
the task's: its process's code when it has one, 128 + N for a signal N, 1
for a task that ended without a code (stopped, lost for good), 2 when it
could never be placed.
"""

from __future__ import annotations

import asyncio
import sys
from typing import BinaryIO

from corral.client import Client
from corral.errors import FailedPrecondition, NotFound
from corral.model import Task, TaskState

EXIT_PLACEMENT = 2
_POLL = 0.1


def exit_code(task: Task) -> int:
    s = task.status
    if s.state is TaskState.FAILED and s.started_at is None and s.exit_code is None:
        return EXIT_PLACEMENT
    if s.exit_code is not None:
        return 128 - s.exit_code if s.exit_code < 0 else min(s.exit_code, 255)
    return 0 if s.state is TaskState.COMPLETED else 1


async def attach(client: Client, task: Task, sink: BinaryIO | None = None) -> tuple[Task, int]:
    """Follow each attempt's output until the task is final; returns it and its exit code."""
    out = sink or sys.stdout.buffer
    followed = 0
    while True:
        task = await client.get_task(task.id)
        s = task.status
        started = s.state in (TaskState.RUNNING, TaskState.COMPLETED, TaskState.FAILED)
        # Attempts that ran before this look are shown too, in order.
        upto = s.generation if started or s.state.final else s.generation - 1
        if followed < upto:
            followed += 1
            await _follow(client, task, followed, out)
            continue  # look again: the attempt ended, the task may restart
        if s.state.final:
            return task, exit_code(task)
        # Placement, a restart's backoff: nothing has an event the CLI can wait on here.
        await asyncio.sleep(_POLL)


async def _follow(client: Client, task: Task, generation: int, out: BinaryIO) -> None:
    try:
        async for chunk in client.logs(task.id, follow=True, generation=generation):
            out.write(chunk)
            out.flush()
    except (NotFound, FailedPrecondition):
        return  # an attempt that never started (its node vanished first) has no output
