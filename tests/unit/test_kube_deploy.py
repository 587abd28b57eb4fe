"""deploy/: the manifests parse, use the RBAC service account, and pass flags Corral knows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from typer.testing import CliRunner

from corral.cli.main import build

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def docs(name: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all((DEPLOY / "kubernetes" / name).read_text()) if d]


def test_manifests_are_well_formed() -> None:
    for name in ("corral.yaml", "rbac.yaml"):
        for doc in docs(name):
            assert doc["apiVersion"] and doc["kind"] and doc["metadata"]["name"], doc


def test_worker_runs_as_the_rbac_service_account() -> None:
    accounts = {d["metadata"]["name"] for d in docs("rbac.yaml") if d["kind"] == "ServiceAccount"}
    workers = [d for d in docs("corral.yaml") if d["metadata"]["name"] == "corral-worker"]
    pods = [d["spec"]["template"]["spec"] for d in workers if "template" in d["spec"]]
    assert pods and all(p["serviceAccountName"] in accounts for p in pods)


def test_container_flags_exist() -> None:
    runner = CliRunner()
    for doc in docs("corral.yaml"):
        template = doc.get("spec", {}).get("template")
        if not template:
            continue
        for container in template["spec"]["containers"]:
            command, *flags = container["args"]
            result = runner.invoke(build(), [command, "--help"], env={"COLUMNS": "200"})
            assert result.exit_code == 0, result.output
            for flag in flags:
                assert flag.split("=")[0] in result.output, (command, flag)


def test_dockerfile_builds_without_a_registry_as_a_non_root_user() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    assert "ARG BASE=corral-base:bookworm" in text
    assert "FROM ${BASE}" in text
    assert "USER 10001" in text
    assert 'CMD ["corral", "health"]' in text.split("HEALTHCHECK", 1)[1].splitlines()[0]


# The versions README and `make check` name.
K8S_VERSIONS = ("1.33.0", "1.37.0")


def pods() -> list[tuple[str, dict[str, Any]]]:
    return [
        (d["metadata"]["name"], d["spec"]["template"]["spec"])
        for d in docs("corral.yaml")
        if "template" in d.get("spec", {})
    ]


def test_manifests_pass_the_kubernetes_schemas_strictly() -> None:
    for name in ("corral.yaml", "rbac.yaml"):
        for doc in docs(name):
            for version in K8S_VERSIONS:
                kubernetes_validate.validate(doc, version, strict=True)


def test_the_strict_check_rejects_an_unknown_field() -> None:
    doc = next(d for d in docs("corral.yaml") if d["kind"] == "Deployment")
    doc["spec"]["template"]["spec"]["containers"][0]["livenessprobe"] = {}  # a typo
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(doc, K8S_VERSIONS[-1], strict=True)


def test_every_pod_is_locked_down_with_requests_and_limits() -> None:
    assert {name for name, _ in pods()} == {"corral-manager", "corral-worker", "corral-gateway"}
    for name, pod in pods():
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        for container in pod["containers"]:
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] is True, name
            assert context["allowPrivilegeEscalation"] is False, name
            assert context["capabilities"]["drop"] == ["ALL"], name
            resources = container["resources"]
            assert {"cpu", "memory"} <= set(resources["requests"]), name
            assert {"cpu", "memory"} <= set(resources["limits"]), name


def test_grpc_servers_are_probed_with_the_grpc_health_protocol() -> None:
    for name, pod in pods():
        if name == "corral-gateway":
            continue
        (container,) = pod["containers"]
        port = container["ports"][0]["containerPort"]
        assert container["readinessProbe"]["grpc"] == {"port": port}, name
        assert container["livenessProbe"]["grpc"] == {"port": port}, name


def test_only_workers_and_the_gateway_reach_the_manager() -> None:
    (budget,) = [d for d in docs("corral.yaml") if d["kind"] == "PodDisruptionBudget"]
    assert budget["spec"]["selector"]["matchLabels"] == {"app": "corral-manager"}
    (policy,) = [
        d
        for d in docs("corral.yaml")
        if d["kind"] == "NetworkPolicy" and d["metadata"]["name"] == "corral-manager"
    ]
    assert policy["spec"]["podSelector"]["matchLabels"] == {"app": "corral-manager"}
    (rule,) = policy["spec"]["ingress"]
    sources = [peer["podSelector"]["matchLabels"]["app"] for peer in rule["from"]]
    assert sorted(sources) == ["corral-gateway", "corral-worker"]
