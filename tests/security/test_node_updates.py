"""A node reports only its own attempts: another node's forged updates change nothing.

Kubernetes' node authorizer, for Corral's stream: the core keeps an update only
when its attempt is live on the node whose stream sent it (``manager.reconciling``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from acl_stack import AclStack, acl_stack

from corral.client import Client
from corral.model import Task, TaskSpec, TaskState
from manager.acl import Role
from tests.simworker import COMPLETED, RUNNING, SimWorker
from tests.waiting import eventually


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[AclStack]:
    async with acl_stack(tmp_path / "m") as s:
        yield s


async def test_a_node_cannot_report_another_node_s_attempt(stack: AclStack) -> None:
    one = SimWorker(stack.target, "node-1", token=stack.make("node-1", Role.NODE))
    two = SimWorker(stack.target, "node-2", token=stack.make("node-2", Role.NODE))
    await one.connect()
    try:
        async with stack.client("submitter") as client:
            task = await client.submit(TaskSpec(name="victim", runtime="fake"))
            running = await eventually(
                lambda: _running(client, task.id), what="the task RUNNING on node-1"
            )
            assert running.status.node_id == "node-1"
            generation = running.status.generation
            await two.connect()
            # Forged: node-2 claims node-1's attempt completed, then that it runs it. The
            # second is answered with a stop order to node-2 (its stale attempt), which,
            # the stream being ordered, proves the first was handled too.
            await two.update([(task.id, generation, COMPLETED, 0, "forged")])
            await two.update([(task.id, generation, RUNNING, None, "forged")])
            stop = await two.next("stop")
            assert [(o.task_id, o.generation) for o in stop.stop.orders] == [(task.id, generation)]
            after = await client.get_task(task.id)
            assert after.status.state is TaskState.RUNNING
            assert (after.status.node_id, after.status.generation) == ("node-1", generation)
            assert "stop" not in [m.WhichOneof("kind") for m in one.messages]
            # The node that runs it still reports it.
            await one.update([(task.id, generation, COMPLETED, 0, "done")])
            done = await eventually(
                lambda: _ended(client, task.id), what="node-1's completion applied"
            )
            assert done.status.state is TaskState.COMPLETED
            assert done.status.node_id == "node-1"
    finally:
        await two.close()
        await one.close()


async def _running(client: Client, task_id: str) -> Task | None:
    task = await client.get_task(task_id)
    return task if task.status.state is TaskState.RUNNING else None


async def _ended(client: Client, task_id: str) -> Task | None:
    task = await client.get_task(task_id)
    return task if task.status.state.final else None
