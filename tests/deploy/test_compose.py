"""deploy/compose.yaml end to end, as a user runs it: Debian's docker-compose
brings up a manager, two workers and the gateway from the image (host
networking, every server on 127.0.0.1, free ports), curl drives a task and a
job through the gateway, and the stack comes down with its volumes. The `ha`
profile adds PostgreSQL and a second manager: the leader is killed and the
gateway carries on with the other."""

from __future__ import annotations

import contextlib
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

from corral.probing import grpc_status

COMPOSE = ROOT / "deploy" / "compose.yaml"


class Stack:
    def __init__(self, *, ha: bool = False) -> None:
        self.project = f"corral-{uuid.uuid4().hex[:8]}"
        names = ["MANAGER", "WORKER1", "WORKER2", "GATEWAY"]
        names += ["MANAGER2", "POSTGRES"] if ha else []
        self.ports = {f"CORRAL_{name}_PORT": free_port() for name in names}
        self.gateway = f"http://127.0.0.1:{self.ports['CORRAL_GATEWAY_PORT']}"
        self.env = {**os.environ, **{k: str(v) for k, v in self.ports.items()}}
        self.profile = ["--profile", "ha"] if ha else []
        if ha:
            # What deploy/compose.ha.env says, on this test's ports.
            self.env["CORRAL_STORE"] = (
                f"postgresql://corral@127.0.0.1:{self.ports['CORRAL_POSTGRES_PORT']}/corral"
            )
            self.env["CORRAL_MORE_MANAGERS"] = f",127.0.0.1:{self.ports['CORRAL_MANAGER2_PORT']}"
        self.managers = {
            "manager": f"127.0.0.1:{self.ports['CORRAL_MANAGER_PORT']}",
            **({"manager-2": f"127.0.0.1:{self.ports['CORRAL_MANAGER2_PORT']}"} if ha else {}),
        }

    def compose(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["docker-compose", "-p", self.project, "-f", str(COMPOSE), *self.profile, *args],
            capture_output=True, text=True, timeout=180, env=self.env, check=False,
        )  # fmt: skip

    def serving(self) -> list[str]:
        """The manager services that answer the gRPC health check SERVING (the leader)."""
        return [name for name, addr in self.managers.items() if grpc_status(addr) == "SERVING"]

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


@contextlib.contextmanager
def running(stack: Stack) -> Iterator[Stack]:
    need(
        shutil.which("docker-compose") is not None,
        "no docker-compose (apt-get install docker-compose)",
    )
    need(shutil.which("curl") is not None, "no curl")
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


@pytest.fixture
def stack(corral_image: str) -> Iterator[Stack]:
    with running(Stack()) as stack:
        yield stack


@pytest.fixture
def ha_stack(corral_image: str) -> Iterator[Stack]:
    present = (
        subprocess.run(
            ["docker", "image", "inspect", "corral-postgres:dev"], capture_output=True, check=False
        ).returncode
        == 0
    )
    need(present, "no corral-postgres:dev image: run `make image-postgres`")
    with running(Stack(ha=True)) as stack:
        yield stack


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


@pytest.mark.timeout(600)
async def test_compose_ha_profile_survives_the_leaders_kill(ha_stack: Stack) -> None:
    stack = ha_stack
    await poll(lambda: stack.curl(f"{stack.gateway}/health")[0] == 200, what="gateway /health")
    await poll(lambda: len(stack.get_json("/nodes") or []) == 2, what="two workers registered")
    (leader,) = await poll(stack.serving, what="one manager leads")

    def submitted(name: str) -> bool:
        body = json.dumps({"spec": {"name": name, "command": ["echo", name]}})
        code, _ = stack.curl(
            "-X", "POST", f"{stack.gateway}/v1/tasks", "-H", "content-type: application/json",
            "-d", body,
        )  # fmt: skip
        return code == 200

    def completed(name: str) -> bool:
        task = stack.get_json(f"/v1/tasks/{name}")
        return bool(task) and task["status"]["state"] == "TASK_STATE_COMPLETED"

    assert submitted("before-kill")
    await poll(lambda: completed("before-kill"), what="a task completes")

    killed = stack.compose("kill", "-s", "SIGKILL", leader)
    assert killed.returncode == 0, killed.stderr
    # The standby takes the lease once it lapses; the gateway follows the new leader.
    (new_leader,) = await poll(stack.serving, what="the standby leads")
    assert new_leader != leader
    await poll(lambda: submitted("after-kill"), what="a submit through the gateway")
    await poll(lambda: completed("after-kill"), what="a task completes under the new leader")
    assert completed("before-kill"), "the task acknowledged before the kill is kept"
