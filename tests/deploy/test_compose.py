"""deploy/compose.yaml end to end, as a user runs it: Debian's docker-compose
brings up a manager, two workers and the gateway from the image (host
networking, every server on 127.0.0.1, free ports), curl drives a task and a
job through the gateway, and the stack comes down with its volumes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from deploy_support import ROOT, free_port, need
from waiting import eventually

COMPOSE = ROOT / "deploy" / "compose.yaml"


class Stack:
    def __init__(self) -> None:
        self.project = f"corral-{uuid.uuid4().hex[:8]}"
        self.ports = {
            "CORRAL_MANAGER_PORT": free_port(),
            "CORRAL_WORKER1_PORT": free_port(),
            "CORRAL_WORKER2_PORT": free_port(),
            "CORRAL_GATEWAY_PORT": free_port(),
        }
        self.gateway = f"http://127.0.0.1:{self.ports['CORRAL_GATEWAY_PORT']}"
        self.env = {**os.environ, **{k: str(v) for k, v in self.ports.items()}}

    def compose(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["docker-compose", "-p", self.project, "-f", str(COMPOSE), *args],
            capture_output=True, text=True, timeout=180, env=self.env, check=False,
        )  # fmt: skip

    def curl(self, *args: str) -> tuple[int, str]:
        result = subprocess.run(
            ["curl", "-s", "-w", "\n%{http_code}", *args],
            capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip
        body, _, code = result.stdout.rpartition("\n")
        return int(code or 0), body

    def get_json(self, path: str) -> Any:
        """The JSON body of a 200 answer to GET ``path``, else None."""
        code, body = self.curl(self.gateway + path)
        return json.loads(body) if code == 200 else None


@pytest.fixture
def stack(corral_image: str) -> Iterator[Stack]:
    need(
        shutil.which("docker-compose") is not None,
        "no docker-compose (apt-get install docker-compose)",
    )
    need(shutil.which("curl") is not None, "no curl")
    stack = Stack()
    up = stack.compose("up", "-d")
    try:
        assert up.returncode == 0, up.stderr
        yield stack
    finally:
        logs = stack.compose("logs", "--no-color", "--tail=40").stdout
        down = stack.compose("down", "-v", "--remove-orphans")
        print(logs[-4000:])
        assert down.returncode == 0, down.stderr
    left = subprocess.run(
        ["docker", "ps", "-aq", "--filter", f"label=com.docker.compose.project={stack.project}"],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert left.stdout.strip() == "", "containers left after down"


async def poll(check: Callable[[], Any], *, what: str) -> Any:
    # The stack is across a process boundary with no event to subscribe to from here.
    return await eventually(check, timeout=180, interval=0.25, what=what)


@pytest.mark.timeout(600)
async def test_compose_stack_runs_a_task_and_a_job(stack: Stack) -> None:
    g = stack.gateway
    await poll(lambda: stack.curl(f"{g}/health")[0] == 200, what="gateway /health")
    nodes = await poll(
        lambda: (nodes := stack.get_json("/nodes")) and len(nodes) == 2 and nodes,
        what="two workers registered",
    )
    assert {n["Name"] for n in nodes} == {"worker-1", "worker-2"}

    # A task through the canonical REST route, run on one of the workers' containers.
    code, body = stack.curl(
        "-X", "POST", f"{g}/v1/tasks", "-H", "content-type: application/json",
        "-d", json.dumps({"spec": {"name": "compose-hello", "command": ["echo", "hello"]}}),
    )  # fmt: skip
    assert code == 200, body
    task = await poll(
        lambda: (
            (task := stack.get_json("/v1/tasks/compose-hello"))
            and task["status"]["state"] == "TASK_STATE_COMPLETED"
            and task
        ),
        what="task completed",
    )
    assert task["status"]["nodeId"] in {n["id"] for n in stack.get_json("/v1/nodes")["nodes"]}
    assert stack.curl(f"{g}/v1/tasks/compose-hello/logs") == (200, "hello\n")

    # A job through the Kubernetes Job API's route.
    code, body = stack.curl("-X", "POST", f"{g}/jobs", "-d", '{"cmd": "echo from-a-job"}')
    assert code in (200, 201), body
    name = json.loads(body)["metadata"]["name"]
    await poll(
        lambda: (stack.get_json(f"/jobs/{name}/status") or {}).get("succeeded") == 1,
        what="job succeeded",
    )
    assert stack.curl(f"{g}/jobs/{name}/logs") == (200, "from-a-job\n")
