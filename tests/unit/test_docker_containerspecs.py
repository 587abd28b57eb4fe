"""Task spec -> container create arguments, and engine answers -> Started / Exit."""

from __future__ import annotations

from corral.model import NodeId, PortMapping, Resources, TaskId, TaskSpec
from worker.runtimes.base import Assignment, AttemptRef
from worker.runtimes.containerspecs import (
    LABEL_TASK,
    LABEL_WORKER,
    container_name,
    container_options,
    exit_from,
    host_started,
)


def assignment(**fields: object) -> Assignment:
    spec = TaskSpec(name="web", runtime="docker", image="img:1", **fields)  # type: ignore[arg-type]
    return Assignment(AttemptRef(TaskId("t:1"), 3), spec, NodeId("n1"))


def test_bridge_publishes_ports_and_sets_limits_and_labels() -> None:
    a = assignment(
        command=("sleep", "1"),
        ports=(PortMapping(80), PortMapping(53, 5353, "udp")),
        resources=Resources(cpu=1.5, memory_bytes=64 << 20),
        labels={LABEL_TASK: "forged", "team": "a"},
    )
    options = container_options(a, network="bridge", owner="/data/w")
    assert options["ports"] == [(80, "tcp"), (53, "udp")]
    host = options["host_config"]
    assert host["port_bindings"] == {"80/tcp": None, "53/udp": 5353}
    assert host["nano_cpus"] == 1_500_000_000
    assert host["mem_limit"] == host["memswap_limit"] == 64 << 20
    # Corral's labels win over a user's label of the same name.
    assert options["labels"][LABEL_TASK] == "t:1" and options["labels"]["team"] == "a"
    assert options["labels"][LABEL_WORKER] == "/data/w"
    assert options["command"] == ["sleep", "1"]


def test_host_network_publishes_nothing_and_reports_its_own_ports() -> None:
    a = assignment(ports=(PortMapping(8080, 9999),))
    options = container_options(a, network="host", owner="/w")
    assert "ports" not in options and "port_bindings" not in options["host_config"]
    assert options["command"] is None  # the image's own command
    assert host_started(a.spec.ports).ports == (PortMapping(8080, 8080),)


def test_names_are_valid_for_docker_and_differ_per_worker() -> None:
    ref = AttemptRef(TaskId("a:b"), 2)
    assert container_name(ref, "/w1").startswith("corral-a_b-2-")
    assert container_name(ref, "/w1") != container_name(ref, "/w2")


def test_exits() -> None:
    assert exit_from({"ExitCode": 0}).ok
    oom = exit_from({"ExitCode": 137, "OOMKilled": True})
    assert oom.oom_killed and oom.message == "OOM-killed" and not oom.ok
    failed = exit_from({"ExitCode": 2, "Error": "boom"})
    assert failed.exit_code == 2 and failed.message == "exited with code 2: boom"
