"""deploy/: the manifests parse, use the RBAC service account, and pass flags Corral knows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

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


def test_dockerfile_installs_every_package() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    for package in ("corral", "manager", "worker", "gateway", "deploy"):
        assert f"COPY {package} {package}" in text
