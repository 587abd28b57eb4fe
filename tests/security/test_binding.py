"""Environments are not the network's: docker publishes them on the node's loopback."""

from __future__ import annotations

import pytest

from corral.errors import ValidationError
from corral.model import NodeId, PortMapping, TaskId, TaskSpec
from corral.validation import check_ports
from manager.config import ManagerConfig
from manager.environments.specs import environment_spec
from manager.environments.templates import load_templates
from worker.runtimes.base import Assignment, AttemptRef
from worker.runtimes.containerspecs import container_options


@pytest.mark.parametrize("runtime", ["docker", "process"])
def test_an_environment_publishes_on_loopback_only(runtime: str) -> None:
    template = load_templates()["python"]
    spec = environment_spec(
        template,
        repl_id="p1",
        tenant="",
        config=ManagerConfig(environments_runtime=runtime),
    )
    assert [p.host_ip for p in spec.ports] == ["127.0.0.1"]
    assert spec.env["HOST"] == ("0.0.0.0" if runtime == "docker" else "127.0.0.1")
    if runtime == "docker":
        assignment = Assignment(AttemptRef(TaskId("t"), 1), spec, NodeId("n1"))
        options = container_options(assignment, network="bridge", owner="/data/w")
        (binding,) = options["host_config"]["port_bindings"].values()
        assert binding == ("127.0.0.1", None)  # the engine picks the port, on loopback


def test_a_task_port_without_host_ip_publishes_as_before_and_bad_ips_are_named() -> None:
    spec = TaskSpec(name="web", runtime="docker", image="img:1", ports=(PortMapping(80, 8080),))
    options = container_options(
        Assignment(AttemptRef(TaskId("t"), 1), spec, NodeId("n1")), network="bridge", owner="/w"
    )
    assert options["host_config"]["port_bindings"] == {"80/tcp": 8080}
    for bad in ("localhost", "127.0.0.1\n", "10.0.0.300"):
        with pytest.raises(ValidationError) as raised:
            check_ports((PortMapping(80, host_ip=bad),), "spec.ports")
        assert raised.value.field == "spec.ports[0].host_ip"
