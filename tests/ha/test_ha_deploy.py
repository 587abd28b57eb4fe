"""deploy/kubernetes/several-managers.yaml: three managers, only the leader ready, flags known."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from typer.testing import CliRunner

from corral.cli.main import build

KUBE = Path(__file__).resolve().parents[2] / "deploy" / "kubernetes"


def docs(name: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all((KUBE / name).read_text()) if d]


def managers() -> dict[str, Any]:
    (found,) = [d for d in docs("several-managers.yaml") if d["kind"] == "StatefulSet"]
    return found


def test_three_managers_behind_the_single_manager_service() -> None:
    sts = managers()
    assert sts["spec"]["replicas"] == 3
    labels = sts["spec"]["template"]["metadata"]["labels"]
    (service,) = [
        d
        for d in docs("corral.yaml")
        if d["kind"] == "Service" and d["metadata"]["name"] == "corral-manager"
    ]
    # The Service workers and the gateway dial selects these pods (and reaches the ready one).
    assert service["spec"]["selector"].items() <= labels.items()


def test_readiness_is_the_grpc_health_check_and_liveness_is_not() -> None:
    (container,) = managers()["spec"]["template"]["spec"]["containers"]
    port = container["ports"][0]["containerPort"]
    assert container["readinessProbe"]["grpc"] == {"port": port}
    # A standby answers NOT_SERVING: a gRPC liveness probe would restart it forever.
    assert "grpc" not in container["livenessProbe"]
    assert container["livenessProbe"]["tcpSocket"] == {"port": port}


def test_the_store_comes_from_a_secret_and_the_flags_exist() -> None:
    pod = managers()["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    env = {e["name"]: e for e in container["env"]}
    assert "secretKeyRef" in env["CORRAL_STORE"]["valueFrom"]
    command, *flags = container["args"]
    result = CliRunner().invoke(build(), [command, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    for flag in flags:
        assert flag.split("=")[0] in result.output, flag
    assert "CORRAL_STORE" in result.output
    values = dict(f.split("=", 1) for f in flags)
    # Workers keep their tasks for two thirds of the TTL: longer than a lease lapsing.
    assert float(values["--ttl"]) * 2 / 3 > float(values["--lease-duration"])


def test_every_pod_is_locked_down_with_requests_and_limits() -> None:
    pod = managers()["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    (container,) = pod["containers"]
    context = container["securityContext"]
    assert context["readOnlyRootFilesystem"] is True
    assert context["allowPrivilegeEscalation"] is False
    assert context["capabilities"]["drop"] == ["ALL"]
    assert {"cpu", "memory"} <= set(container["resources"]["requests"])
    assert {"cpu", "memory"} <= set(container["resources"]["limits"])
