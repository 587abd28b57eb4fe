"""The docker runtime against the real engine.

Every connection stays on loopback: containers that serve use host networking
and bind 127.0.0.1; the bridge path is checked on the configuration the
runtime gives the engine, never by connecting through it. Without an engine
these tests skip on a laptop and fail in CI.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import docker
import docker.errors
import pytest
from docker_engine import IMAGE
from waiting import eventually, free_port

from corral.model import (
    ExecProbe,
    HealthCheck,
    HttpProbe,
    PortMapping,
    Resources,
    TaskId,
    TaskSpec,
)
from worker import health
from worker.config import WorkerConfig
from worker.runtimes.base import Assignment, AttemptRef, Runtime, Started, StartError
from worker.runtimes.containerspecs import LABEL_WORKER, started_from
from worker.runtimes.docker import DockerRuntime, create
from worker.runtimes.docker import usage as docker_usage

# A registry on a closed loopback port: the pull fails at once and nothing leaves the host.
UNREACHABLE_IMAGE = "127.0.0.1:1/corral-test/missing:latest"
ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.docker


@pytest.fixture
def data_dir(tmp_path: Path, engine: Any) -> Iterator[Path]:
    yield tmp_path
    # Whatever a test left behind on the engine goes, found by the worker label.
    owner = str(tmp_path.resolve())
    for c in engine.api.containers(all=True, filters={"label": f"{LABEL_WORKER}={owner}"}):
        with contextlib.suppress(docker.errors.NotFound):
            engine.api.remove_container(c["Id"], force=True)


@pytest.fixture
async def runtime(data_dir: Path) -> AsyncIterator[DockerRuntime]:
    rt = create(WorkerConfig(data_dir=data_dir, docker_network="host"))
    yield rt
    await rt.close()


def assign(task: str, *command: str, generation: int = 1, **fields: Any) -> Assignment:
    spec = TaskSpec(name=task, runtime="docker", image=IMAGE, command=command, **fields)
    return Assignment(AttemptRef(TaskId(task), generation), spec, node_id="node-1")  # type: ignore[arg-type]


async def read_logs(rt: DockerRuntime, ref: AttemptRef, **kw: Any) -> bytes:
    return b"".join([chunk async for chunk in rt.logs(ref, **kw)])


def containers_of(engine: Any, data_dir: Path) -> list[Any]:
    label = f"{LABEL_WORKER}={data_dir.resolve()}"
    return list(engine.containers.list(all=True, filters={"label": label}))


async def test_available_only_when_the_engine_answers(
    runtime: DockerRuntime, tmp_path: Path
) -> None:
    assert isinstance(runtime, Runtime)
    assert await runtime.available()
    nowhere = create(WorkerConfig(data_dir=tmp_path, docker_host=f"unix://{tmp_path}/no.sock"))
    try:
        assert not await asyncio.wait_for(nowhere.available(), 5)
    finally:
        await nowhere.close()


async def test_runs_to_completion_and_keeps_logs_after_removal(
    runtime: DockerRuntime, engine: Any, data_dir: Path
) -> None:
    a = assign("done", "sh", "-c", "echo hi; echo oops >&2; exit 3")
    await runtime.start(a)
    end = await asyncio.wait_for(runtime.wait(a.ref), 30)
    assert end.exit_code == 3 and not end.ok and "code 3" in end.message
    # Logs were copied before the container went away.
    assert containers_of(engine, data_dir) == []
    out = await read_logs(runtime, a.ref)
    assert b"hi\n" in out and b"oops\n" in out
    assert await read_logs(runtime, a.ref, tail=1) in (b"hi\n", b"oops\n")
    # A fresh runtime (a restarted worker) still serves them from the kept copy.
    again = create(WorkerConfig(data_dir=data_dir))
    try:
        assert await read_logs(again, a.ref) == out
    finally:
        await again.close()

    ok = assign("ok", "true")
    await runtime.start(ok)
    assert (await asyncio.wait_for(runtime.wait(ok.ref), 30)).ok


async def test_follows_logs_from_the_engine_while_running(runtime: DockerRuntime) -> None:
    a = assign("follow", "sh", "-c", "echo one; sleep 0.5; echo two")
    await runtime.start(a)
    out = await asyncio.wait_for(read_logs(runtime, a.ref, follow=True), 30)
    assert out == b"one\ntwo\n"
    assert (await runtime.wait(a.ref)).ok
    assert await read_logs(runtime, a.ref) == b"one\ntwo\n"


async def test_builds_bridge_ports_limits_env_and_labels(
    runtime: DockerRuntime, engine: Any, data_dir: Path
) -> None:
    fixed = free_port()
    a = assign(
        "web",
        "sleep",
        "60",
        env={"GREETING": "hello"},
        working_dir="/tmp",
        network="bridge",
        ports=(PortMapping(8080), PortMapping(9090, fixed)),
        resources=Resources(cpu=0.5, memory_bytes=64 * 1024 * 1024),
        labels={"team": "core"},
    )
    await runtime.start(a)
    (container,) = containers_of(engine, data_dir)
    host = container.attrs["HostConfig"]
    assert host["NetworkMode"] == "bridge"
    assert host["PortBindings"] == {
        "8080/tcp": [{"HostIp": "", "HostPort": ""}],
        "9090/tcp": [{"HostIp": "", "HostPort": str(fixed)}],
    }
    assert host["NanoCpus"] == 500_000_000
    assert host["Memory"] == host["MemorySwap"] == 64 * 1024 * 1024
    config = container.attrs["Config"]
    assert "GREETING=hello" in config["Env"]
    assert config["WorkingDir"] == "/tmp"
    assert config["Cmd"] == ["sleep", "60"]
    assert (
        config["Labels"].items()
        >= {
            "team": "core",
            "corral.task-id": "web",
            "corral.generation": "1",
            "corral.node-id": "node-1",
        }.items()
    )
    await runtime.stop(a.ref, grace=0)
    assert not (await asyncio.wait_for(runtime.wait(a.ref), 30)).ok


async def test_http_and_exec_health_turn_healthy_then_unhealthy_and_a_new_attempt_recovers(
    runtime: DockerRuntime,
) -> None:
    """The worker's own probes (worker.health) against what the runtime reports."""
    port = free_port()
    serve = (
        f"mkdir -p /www && echo ok > /www/index.html && exec httpd -f -p 127.0.0.1:{port} -h /www"
    )
    http_check = HealthCheck(HttpProbe("/index.html", port), interval=0.1, failure_threshold=2)
    exec_check = HealthCheck(ExecProbe(("test", "-f", "/www/index.html")), interval=0.1)

    async def verdicts(ref: AttemptRef, started: Started) -> asyncio.Queue[tuple[str, bool, str]]:
        async def run_exec(argv: tuple[str, ...], timeout: float) -> int:
            return await runtime.exec(ref, argv, timeout)

        target = health.Target(started.host, started.ports, run_exec)
        seen: asyncio.Queue[tuple[str, bool, str]] = asyncio.Queue()
        for kind, check in (("http", http_check), ("exec", exec_check)):

            async def report(ok: bool, reason: str, kind: str = kind) -> None:
                await seen.put((kind, ok, reason))

            watchers.append(asyncio.create_task(health.watch(check, target, report)))
        return seen

    async def expect(seen: asyncio.Queue[tuple[str, bool, str]], ok: bool) -> list[str]:
        got = [await asyncio.wait_for(seen.get(), 20) for _ in range(2)]
        assert sorted(kind for kind, _, _ in got) == ["exec", "http"], got
        assert all(verdict is ok for _, verdict, _ in got), got
        return [reason for _, _, reason in got]

    watchers: list[asyncio.Task[None]] = []
    try:
        first = assign("httpd", "sh", "-c", serve, ports=(PortMapping(port),))
        started = await runtime.start(first)
        assert started.host == "127.0.0.1" and started.ports == (PortMapping(port, port),)
        seen = await verdicts(first.ref, started)
        await expect(seen, True)
        # Break it from inside: the page goes away, httpd answers 404, `test -f` exits 1.
        assert await runtime.exec(first.ref, ("rm", "/www/index.html"), timeout=10) == 0
        reasons = await expect(seen, False)
        assert any("404" in r for r in reasons) and any("exited 1" in r for r in reasons)
        for w in watchers:
            w.cancel()
        # What a restart policy does with an unhealthy attempt: stop it, start the next one.
        await runtime.stop(first.ref, grace=1)
        await asyncio.wait_for(runtime.wait(first.ref), 30)
        second = assign("httpd", "sh", "-c", serve, generation=2, ports=(PortMapping(port),))
        seen = await verdicts(second.ref, await runtime.start(second))
        await expect(seen, True)
        await runtime.stop(second.ref, grace=0)
    finally:
        for w in watchers:
            w.cancel()
        await asyncio.gather(*watchers, return_exceptions=True)


async def test_memory_limit_oom_kills(runtime: DockerRuntime) -> None:
    a = assign(
        "hog",
        "sh",
        "-c",
        "head -c 200m /dev/zero | tail",
        resources=Resources(memory_bytes=8 * 1024 * 1024),
    )
    await runtime.start(a)
    end = await asyncio.wait_for(runtime.wait(a.ref), 60)
    assert end.oom_killed and end.message == "OOM-killed" and not end.ok


async def test_stop_sends_the_signal_then_kills_after_grace(
    runtime: DockerRuntime, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(docker_usage, "USAGE_CACHE", 0.2)  # node stats refresh, sped up
    polite = assign(
        "polite", "sh", "-c", "trap 'echo bye; exit 0' TERM; while :; do sleep 0.1; done"
    )
    stubborn = assign("stubborn", "sh", "-c", "trap '' TERM; while :; do :; done")
    await asyncio.gather(runtime.start(polite), runtime.start(stubborn))

    # The busy loop shows in node stats: CPU is a rate, so it takes two samples.
    async def busy() -> bool:
        cpu, memory = await runtime.usage()
        # Above what the idle shell uses, not a core: on a loaded machine the loop gets less.
        return cpu >= 0.05 and memory > 0

    await eventually(busy, timeout=20, interval=0.2, what="the busy loop shows in usage")

    t0 = time.monotonic()
    await asyncio.gather(runtime.stop(polite.ref, grace=10), runtime.stop(stubborn.ref, grace=1))
    polite_end, stubborn_end = await asyncio.wait_for(
        asyncio.gather(runtime.wait(polite.ref), runtime.wait(stubborn.ref)), 30
    )
    assert polite_end.exit_code == 0
    assert stubborn_end.exit_code == 137
    assert 0.9 < time.monotonic() - t0 < 10
    assert b"bye" in await read_logs(runtime, polite.ref)
    await runtime.stop(polite.ref, grace=1)  # idempotent once gone


async def test_unknown_image_fails_fast_with_the_engines_reason(
    runtime: DockerRuntime, engine: Any, data_dir: Path
) -> None:
    a = Assignment(
        AttemptRef(TaskId("nope"), 1),
        TaskSpec(name="nope", runtime="docker", image=UNREACHABLE_IMAGE),
        node_id="node-1",  # type: ignore[arg-type]
    )
    t0 = time.monotonic()
    with pytest.raises(StartError) as first:
        await runtime.start(a)
    assert time.monotonic() - t0 < 10
    assert UNREACHABLE_IMAGE in str(first.value) and "refused" in str(first.value)
    # A restart right after does not ask the engine again: same reason, at once.
    retry = Assignment(AttemptRef(TaskId("nope"), 2), a.spec, node_id=a.node_id)
    with pytest.raises(StartError) as second:
        await runtime.start(retry)
    assert str(second.value) == str(first.value)
    assert containers_of(engine, data_dir) == []

    bad_command = assign("nocmd", "/no/such/program")
    with pytest.raises(StartError, match="no/such/program"):
        await runtime.start(bad_command)
    assert containers_of(engine, data_dir) == []


ORPHAN = textwrap.dedent(
    """
    import asyncio, sys
    from pathlib import Path
    from corral.model import TaskId, TaskSpec
    from worker.config import WorkerConfig
    from worker.runtimes.base import Assignment, AttemptRef
    from worker.runtimes.docker import create

    async def main():
        rt = create(WorkerConfig(data_dir=Path(sys.argv[1]), docker_network="host"))
        spec = TaskSpec(name="keep", runtime="docker", image=IMAGE, command=("sleep", "300"))
        await rt.start(Assignment(AttemptRef(TaskId("keep"), 4), spec, "node-1"))
        print("started", flush=True)
        await asyncio.sleep(300)

    asyncio.run(main())
    """
).replace("IMAGE", repr(IMAGE))


async def test_a_restarted_worker_adopts_instead_of_duplicating(
    engine: Any, data_dir: Path
) -> None:
    worker = subprocess.Popen(
        [sys.executable, "-c", ORPHAN, str(data_dir)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert worker.stdout is not None
        line = await asyncio.wait_for(asyncio.to_thread(worker.stdout.readline), 60)
        assert line.strip() == "started"
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.wait()
        if worker.stdout:
            worker.stdout.close()
    (orphan,) = containers_of(engine, data_dir)
    assert orphan.status == "running"

    again = create(WorkerConfig(data_dir=data_dir, docker_network="host"))
    try:
        (adopted,) = await again.adopt()
        assert adopted.ref == AttemptRef(TaskId("keep"), 4) and adopted.exit is None
        assert await again.adopt() == []  # adopting twice adds nothing
        # The session redelivers the same assignment: it maps to the same container.
        spec = TaskSpec(name="keep", runtime="docker", image=IMAGE, command=("sleep", "300"))
        await again.start(Assignment(adopted.ref, spec, "node-1"))  # type: ignore[arg-type]
        assert [c.id for c in containers_of(engine, data_dir)] == [orphan.id]
        # What Reconcile does with a generation the manager forgot: stop it.
        await again.stop(adopted.ref, grace=0)
        end = await asyncio.wait_for(again.wait(adopted.ref), 30)
        assert end.exit_code == 137
        assert containers_of(engine, data_dir) == []
    finally:
        await again.close()


def test_reports_the_host_ports_the_engine_chose() -> None:
    # The test engine has no bridge, so it binds nothing: this is what a bridged engine answers.
    attrs = {
        "HostConfig": {
            "NetworkMode": "bridge",
            "PortBindings": {"8080/tcp": [{"HostIp": "", "HostPort": ""}]},
        },
        "NetworkSettings": {
            "IPAddress": "172.17.0.2",
            "Ports": {"8080/tcp": [{"HostIp": "0.0.0.0", "HostPort": "49153"}]},
        },
    }
    started = started_from(attrs)
    assert started.ports == (PortMapping(8080, 49153),) and started.host == "127.0.0.1"
    unpublished = {
        "HostConfig": {"NetworkMode": "bridge"},
        "NetworkSettings": attrs["NetworkSettings"] | {"Ports": {}},
    }
    assert started_from(unpublished).host == "172.17.0.2"


async def test_a_redelivered_assignment_starts_one_container(
    runtime: DockerRuntime, engine: Any, data_dir: Path
) -> None:
    a = assign("twice", "sleep", "60")
    first, second = await asyncio.gather(runtime.start(a), runtime.start(a))
    assert first == second == await runtime.start(a)
    assert len(containers_of(engine, data_dir)) == 1
    await runtime.stop(a.ref, grace=0)
    await asyncio.wait_for(runtime.wait(a.ref), 30)


async def test_kept_logs_are_bounded_and_keep_the_newest_lines(data_dir: Path) -> None:
    rt = create(WorkerConfig(data_dir=data_dir, docker_network="host", log_max_bytes=4096))
    try:
        a = assign(
            "chatty", "sh", "-c", "i=0; while [ $i -lt 3000 ]; do echo line $i; i=$((i+1)); done"
        )
        await rt.start(a)
        assert (await asyncio.wait_for(rt.wait(a.ref), 30)).ok
        kept = await read_logs(rt, a.ref)
        assert 0 < len(kept) <= 4096
        # What was cut is said on the first line (worker.logfiles), then whole lines follow.
        marker, _, rest = kept.partition(b"\n")
        assert marker.startswith(b"[corral: ") and marker.endswith(b"bytes of earlier output cut]")
        assert rest.startswith(b"line ") and kept.endswith(b"line 2999\n")
    finally:
        await rt.close()


async def test_adopting_a_container_that_never_started_reports_it_and_removes_it(
    runtime: DockerRuntime, engine: Any, data_dir: Path
) -> None:
    # What a worker killed between create and start leaves behind.
    engine.api.create_container(
        IMAGE,
        ["true"],
        labels={
            LABEL_WORKER: str(data_dir.resolve()),
            "corral.task-id": "half",
            "corral.generation": "2",
            "corral.node-id": "node-1",
        },
    )
    (adopted,) = await runtime.adopt()
    assert adopted.ref == AttemptRef(TaskId("half"), 2)
    assert adopted.exit is not None and "never started" in adopted.exit.message
    assert containers_of(engine, data_dir) == []
