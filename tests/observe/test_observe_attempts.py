"""ListTaskAttempts: the timeline of a task's placements, ended and current."""

from __future__ import annotations

from pathlib import Path

import pytest
from observe_stack import stack

from corral.errors import NotFound
from corral.model import TaskSpec, TaskState


async def test_attempts_of_a_restarted_task_and_of_a_running_one(tmp_path: Path) -> None:
    async with stack(tmp_path) as s:
        flaky = {
            "name": "flaky",
            "command": ["sh", "-c", "exit 3"],
            "restartPolicy": {
                "mode": "RESTART_MODE_ON_FAILURE",
                "maxAttempts": 2,
                "backoff": "0.01s",
            },
        }
        task = (await s.http.post("/v1/tasks", json={"spec": flaky})).json()
        done = await s.client.wait(task["id"], timeout=30)
        assert done.status.state is TaskState.FAILED
        reply = await s.http.get(f"/v1/tasks/{task['id']}/attempts")
        assert reply.status_code == 200, reply.text
        attempts = reply.json()["attempts"]
        assert [a["generation"] for a in attempts] == ["1", "2"]
        assert {a["state"] for a in attempts} == {"TASK_STATE_FAILED"}
        assert all(a["exitCode"] == 3 and a["nodeId"] == done.status.node_id for a in attempts)

        sleeper = await s.client.submit(TaskSpec(name="sleeper", command=("sleep", "30")))
        await s.client.wait(sleeper.id, running=True, timeout=30)
        (current,) = await s.client.task_attempts("sleeper")
        assert current.state is TaskState.RUNNING and current.generation == 1
        assert current.finished_at is None and current.created_at is not None
        await s.client.stop_task(sleeper.id)
        with pytest.raises(NotFound):
            await s.client.task_attempts("nope")
        assert (await s.http.get("/v1/tasks/nope/attempts")).status_code == 404
