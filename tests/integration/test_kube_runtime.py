"""The kubernetes runtime, through the official client, against the fake API server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from fakekube import FakeKube
from waiting import eventually

from corral.model import KubernetesSpec, Resources, TaskId, TaskSpec
from worker.config import WorkerConfig
from worker.runtimes.base import Assignment, AttemptRef, StartError
from worker.runtimes.kubernetes import KubernetesRuntime

NS = "corral"


@pytest.fixture
def fake() -> Iterator[FakeKube]:
    server = FakeKube()
    server.start()
    yield server
    server.stop()


def make_runtime(fake: FakeKube, tmp_path: Path, name: str = "w1") -> KubernetesRuntime:
    config = WorkerConfig(
        data_dir=tmp_path / "worker",
        kubeconfig=str(fake.kubeconfig(tmp_path)),
        namespace=NS,
        name=name,
    )
    return KubernetesRuntime(config, watch_seconds=5, sweep_interval=3600, sweep_grace=0)


@pytest.fixture
async def runtime(fake: FakeKube, tmp_path: Path) -> AsyncIterator[KubernetesRuntime]:
    rt = make_runtime(fake, tmp_path)
    yield rt
    await rt.close()


def job_spec(**kw: object) -> TaskSpec:
    base: dict[str, object] = {
        "name": "hello",
        "runtime": "kubernetes",
        "image": "python:3.12-alpine",
        "command": ("sh", "-c", "python3 -c 'import this'"),
    }
    base.update(kw)
    return TaskSpec(**base)  # type: ignore[arg-type]


def assign(task_id: str, spec: TaskSpec, generation: int = 1) -> Assignment:
    return Assignment(AttemptRef(TaskId(task_id), generation), spec, node_id="n1")  # type: ignore[arg-type]


async def the_pod(fake: FakeKube, job: str) -> str:
    pods = await eventually(
        lambda: [p for p in fake.list("pods", NS) if p["metadata"]["labels"].get("job-name") == job]
    )
    return str(pods[0]["metadata"]["name"])


async def collect(it: AsyncIterator[bytes]) -> bytes:
    return b"".join([chunk async for chunk in it])


async def test_available_and_unavailable(fake: FakeKube, tmp_path: Path) -> None:
    rt = make_runtime(fake, tmp_path)
    assert await rt.available()
    await rt.close()
    missing = KubernetesRuntime(WorkerConfig(kubeconfig=str(tmp_path / "nope")))
    assert not await missing.available()
    await missing.close()


async def test_job_spec_states_logs(fake: FakeKube, runtime: KubernetesRuntime) -> None:
    spec = job_spec(resources=Resources(cpu=0.5, memory_bytes=64 << 20), deadline=30.0)
    started = await runtime.start(assign("t-1", spec))
    assert "created" in started.message
    job = fake.get("jobs", NS, "corral-t-1-1")
    assert job is not None
    labels = job["metadata"]["labels"]
    assert labels["corral.task-id"] == "t-1" and labels["corral.generation"] == "1"
    js = job["spec"]
    assert js["backoffLimit"] == 0
    assert js["activeDeadlineSeconds"] == 30
    assert js["ttlSecondsAfterFinished"] >= 600
    pod_spec = js["template"]["spec"]
    assert pod_spec["restartPolicy"] == "Never"
    container = pod_spec["containers"][0]
    assert container["image"] == "python:3.12-alpine"
    assert container["command"] == ["sh", "-c", "python3 -c 'import this'"]
    assert container["resources"]["limits"] == {"cpu": "500m", "memory": str(64 << 20)}
    assert container["resources"]["requests"] == container["resources"]["limits"]

    pod = await the_pod(fake, "corral-t-1-1")
    fake.write_log(NS, pod, b"The Zen of Python\n")
    fake.set_pod(NS, pod, "Running")
    ref = AttemptRef(TaskId("t-1"), 1)
    # Output appears while the pod runs (followed, not fetched at the end).
    path = runtime._logs.store.path("t-1", 1)
    await eventually(lambda: path.exists() and b"Zen" in path.read_bytes())
    fake.write_log(NS, pod, b"Beautiful is better than ugly.\n")
    fake.set_pod(NS, pod, "Succeeded", exit_code=0)
    exit_ = await asyncio.wait_for(runtime.wait(ref), 10)
    assert exit_.ok and exit_.exit_code == 0
    assert await collect(runtime.logs(ref)) == (
        b"The Zen of Python\nBeautiful is better than ugly.\n"
    )
    assert await collect(runtime.logs(ref, tail=1)) == b"Beautiful is better than ugly.\n"
    # State came from watches, not from polling each Job or Pod.
    assert fake.calls_to("watch", "jobs") and fake.calls_to("watch", "pods")
    assert not fake.calls_to("get", "jobs") and not fake.calls_to("get", "pods")
    # Kept after the pod and the Job are gone (their TTL).
    fake.delete_all("jobs", NS)
    await eventually(lambda: not fake.list("pods", NS))
    assert await collect(runtime.logs(ref)) == (
        b"The Zen of Python\nBeautiful is better than ugly.\n"
    )


@pytest.mark.parametrize(
    ("kwargs", "expect", "oom"),
    [
        ({"exit_code": 137, "reason": "OOMKilled"}, "OOMKilled", True),
        ({"exit_code": 3, "reason": "Error"}, "BackoffLimitExceeded", False),
        ({"pod_reason": "DeadlineExceeded", "message": "too slow"}, "DeadlineExceeded", False),
    ],
)
async def test_job_failures_carry_the_reason(
    fake: FakeKube, runtime: KubernetesRuntime, kwargs: dict[str, object], expect: str, oom: bool
) -> None:
    await runtime.start(assign("t-f", job_spec()))
    pod = await the_pod(fake, "corral-t-f-1")
    fake.set_pod(NS, pod, "Running")
    fake.set_pod(NS, pod, "Failed", **kwargs)  # type: ignore[arg-type]
    exit_ = await asyncio.wait_for(runtime.wait(AttemptRef(TaskId("t-f"), 1)), 10)
    assert not exit_.ok
    assert expect in exit_.message
    assert exit_.oom_killed is oom


async def test_image_pull_backoff_fails_and_cleans_up(
    fake: FakeKube, runtime: KubernetesRuntime
) -> None:
    await runtime.start(assign("t-img", job_spec(image="nope/missing:1")))
    pod = await the_pod(fake, "corral-t-img-1")
    fake.set_pod(NS, pod, "Pending", waiting_reason="ImagePullBackOff")
    exit_ = await asyncio.wait_for(runtime.wait(AttemptRef(TaskId("t-img"), 1)), 10)
    assert not exit_.ok and "ImagePullBackOff" in exit_.message
    await eventually(lambda: fake.get("jobs", NS, "corral-t-img-1") is None)


async def test_stop_deletes_in_background(fake: FakeKube, runtime: KubernetesRuntime) -> None:
    ref = AttemptRef(TaskId("t-stop"), 2)
    await runtime.start(assign("t-stop", job_spec(), generation=2))
    pod = await the_pod(fake, "corral-t-stop-2")
    fake.set_pod(NS, pod, "Running")
    await runtime.stop(ref, grace=1)
    await runtime.stop(ref, grace=1)  # idempotent
    exit_ = await asyncio.wait_for(runtime.wait(ref), 10)
    assert not exit_.ok and exit_.message == "stopped"
    deletes = fake.calls_to("delete", "jobs")
    assert deletes and deletes[0].query["propagationPolicy"] == "Background"
    assert fake.get("jobs", NS, "corral-t-stop-2") is None
    assert fake.get("pods", NS, pod) is None  # cascaded to the pod


async def test_odd_task_ids_become_valid_names(fake: FakeKube, runtime: KubernetesRuntime) -> None:
    task_id = "Cube:21b23589-5d2d-4731-b5c9-A97E9832D021.with.a.very.long.tail.beyond.sixty-three"
    await runtime.start(assign(task_id, job_spec()))
    [job] = fake.list("jobs", NS)
    assert len(job["metadata"]["name"]) <= 63
    assert job["metadata"]["annotations"]["corral.task-id"] == task_id
    await runtime.stop(AttemptRef(TaskId(task_id), 1), grace=0)
    assert not fake.list("jobs", NS)


def env_manifests(name: str) -> tuple[dict[str, object], ...]:
    labels = {"app": name}
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "runner", "image": "node:20-alpine"}]},
            },
        },
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name},
        "spec": {"selector": labels, "ports": [{"port": 3000, "targetPort": 3000}]},
    }
    ingress = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": name},
        "spec": {"rules": [{"host": f"{name}.example.com"}]},
    }
    return (deployment, service, ingress)


def env_spec(name: str) -> TaskSpec:
    return TaskSpec(
        name=name,
        runtime="kubernetes",
        kubernetes=KubernetesSpec(namespace=NS, manifests=env_manifests(name)),
    )


async def test_manifests_created_labelled_and_removed(
    fake: FakeKube, runtime: KubernetesRuntime
) -> None:
    started = await runtime.start(assign("env-1", env_spec("proj-a")))
    assert started.message == "available"
    for resource in ("deployments", "services", "ingresses"):
        obj = fake.get(resource, NS, "proj-a")
        assert obj is not None, resource
        assert obj["metadata"]["labels"]["corral.task-id"] == "env-1"
    dep = fake.get("deployments", NS, "proj-a")
    assert dep is not None
    assert dep["spec"]["template"]["metadata"]["labels"]["corral.generation"] == "1"
    assert dep["spec"]["selector"] == {"matchLabels": {"app": "proj-a"}}
    await runtime.stop(AttemptRef(TaskId("env-1"), 1), grace=0)
    for resource in ("deployments", "services", "ingresses", "pods"):
        assert fake.list(resource, NS) == [], resource
    for call in fake.calls:
        if call.verb == "delete":
            assert call.query.get("propagationPolicy") == "Background"


async def test_partial_create_rolls_back_with_reason(
    fake: FakeKube, runtime: KubernetesRuntime
) -> None:
    fake.failures[("ingresses", "create")] = (403, "ingresses.networking.k8s.io is forbidden")
    with pytest.raises(StartError, match=r"403.*forbidden"):
        await runtime.start(assign("env-2", env_spec("proj-b")))
    assert fake.list("deployments", NS) == [] and fake.list("services", NS) == []


async def test_stuck_environment_fails_start(fake: FakeKube, runtime: KubernetesRuntime) -> None:
    fake.deployment_waiting_reason = "ImagePullBackOff"
    with pytest.raises(StartError, match="ImagePullBackOff"):
        await runtime.start(assign("env-3", env_spec("proj-c")))
    await eventually(lambda: not fake.list("deployments", NS))


async def test_restarted_worker_adopts_then_follows(fake: FakeKube, tmp_path: Path) -> None:
    first = make_runtime(fake, tmp_path)
    await first.start(assign("t-adopt", job_spec()))
    await first.start(assign("env-4", env_spec("proj-d")))
    await first.close()
    other = make_runtime(fake, tmp_path / "other", name="w2")
    assert await other.adopt() == []  # another worker's objects are not its own
    await other.close()

    second = make_runtime(fake, tmp_path)
    adopted = {a.ref.key: a for a in await second.adopt()}
    assert set(adopted) == {"t-adopt.1", "env-4.1"}
    assert all(a.exit is None for a in adopted.values())
    pod = await the_pod(fake, "corral-t-adopt-1")
    fake.set_pod(NS, pod, "Succeeded", exit_code=0)
    exit_ = await asyncio.wait_for(second.wait(AttemptRef(TaskId("t-adopt"), 1)), 10)
    assert exit_.ok
    await second.stop(AttemptRef(TaskId("env-4"), 1), grace=0)
    assert fake.list("deployments", NS) == []
    await second.close()


async def test_sweep_deletes_only_own_unknown_objects(
    fake: FakeKube, runtime: KubernetesRuntime
) -> None:
    await runtime.adopt()
    await runtime.start(assign("env-5", env_spec("proj-e")))

    def orphan(name: str, worker: str) -> dict[str, object]:
        labels = {"corral.task-id": "gone", "corral.generation": "3", "corral.worker": worker}
        return {"metadata": {"name": name, "namespace": NS, "labels": labels}, "spec": {}}

    fake.add_object("services", orphan("left-behind", "w1"))
    fake.add_object("services", orphan("not-mine", "w2"))
    swept = await runtime.sweep()
    assert [o.name for o in swept] == ["left-behind"]
    names = {s["metadata"]["name"] for s in fake.list("services", NS)}
    assert names == {"proj-e", "not-mine"}


async def test_deletion_during_a_watch_gap_is_noticed(fake: FakeKube, tmp_path: Path) -> None:
    config = WorkerConfig(
        data_dir=tmp_path / "gap", kubeconfig=str(fake.kubeconfig(tmp_path)), namespace=NS
    )
    rt = KubernetesRuntime(config, watch_seconds=1)
    try:
        await rt.start(assign("t-gap", job_spec()))
        fake.vanish("jobs", NS, "corral-t-gap-1")  # no DELETED event will ever come
        fake.expire_once.add("jobs")  # the next watch must list again
        exit_ = await asyncio.wait_for(rt.wait(AttemptRef(TaskId("t-gap"), 1)), 10)
        assert not exit_.ok and "deleted outside Corral" in exit_.message
    finally:
        await rt.close()
