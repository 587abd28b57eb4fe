"""Environment templates: structural rendering, load-time checks, specs per runtime."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from corral.errors import ValidationError
from corral.model import RestartMode, TcpProbe
from manager.config import ManagerConfig
from manager.environments.specs import environment_spec
from manager.environments.templates import (
    load_templates,
    memory_bytes,
    render_command,
    render_manifests,
    substitute,
)


def test_shipped_templates_have_nodejs_and_python() -> None:
    templates = load_templates()
    assert {"nodejs", "python"} <= set(templates)
    assert render_command(templates["python"], 8123) == (
        "python3", "-m", "http.server", "8123", "--bind", "0.0.0.0"
    )  # fmt: skip
    assert render_command(templates["python"], 8123, bind="127.0.0.1")[-1] == "127.0.0.1"
    assert templates["nodejs"].fetch is not None and templates["python"].fetch is None


@pytest.mark.parametrize(
    "evil",
    [
        "x\n- y",
        "x\nkind: Secret",
        "a: b",
        "{replId}",
        "'; rm -rf / #",
        "---\napiVersion: v1",
    ],
)
def test_values_stay_inside_their_string(evil: str) -> None:
    """Even unchecked text cannot add keys, documents or placeholders once parsed."""
    doc = yaml.safe_load('metadata: {name: "{replId}", labels: {app: "app-{replId}"}}')
    out = substitute(doc, {"replId": evil})
    assert out == {"metadata": {"name": evil, "labels": {"app": f"app-{evil}"}}}


def test_whole_placeholders_keep_their_type() -> None:
    doc = {"port": "{port}", "text": "p{port}", "command": "{command}"}
    out = substitute(doc, {"port": 80, "command": ["a", "b"]})
    assert out == {"port": 80, "text": "p80", "command": ["a", "b"]}


def test_rendered_objects_are_named_after_the_repl_id() -> None:
    objs = render_manifests(
        load_templates()["python"], repl_id="p-1", host="p-1.example.com", namespace="ns"
    )
    assert [o["kind"] for o in objs] == ["Deployment", "Service", "Ingress"]
    assert all(o["metadata"]["name"] == "p-1" for o in objs)
    container = objs[0]["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["python3", "-m", "http.server", "8000", "--bind", "0.0.0.0"]
    assert container["env"] == [{"name": "PORT", "value": "8000"}]
    assert objs[1]["spec"]["ports"][0]["port"] == 8000
    assert objs[2]["spec"]["rules"][0]["host"] == "p-1.example.com"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "envs.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("languages: {py: {image: python, port: 80, command: [x], kubernetes: "
         "[{metadata: {name: '{replid}'}}]}}", "languages.py.kubernetes[0].metadata.name"),
        ("languages: {py: {image: python, port: 0, command: [x]}}", "languages.py.port"),
        ("languages: {py: {image: 'Bad Image', port: 80, command: [x]}}", "languages.py.image"),
        ("languages: {py: {image: python, port: 80}}", "languages.py.command"),
        ("languages: {Py: {image: python, port: 80, command: [x]}}", "languages.Py"),
        ("languages: {py: {image: python, port: 80, command: [x], fetch: true}}",
         "languages.py.fetch"),
        ("languages: {py: {image: python, port: 80, command: [x], resources: {memory: lots}}}",
         "languages.py.resources.memory"),
        ("nothing: here", "environment_templates"),
        ("languages: [", "environment_templates"),
    ],
)  # fmt: skip
def test_bad_templates_fail_at_load_naming_the_field(tmp_path: Path, text: str, field: str) -> None:
    with pytest.raises(ValidationError) as err:
        load_templates(write(tmp_path, text))
    assert err.value.field == field


def test_memory_quantities() -> None:
    assert memory_bytes("512Mi") == 512 << 20
    assert memory_bytes("1G") == 10**9
    assert memory_bytes("100") == 100
    with pytest.raises(ValueError, match="quantity"):
        memory_bytes("1 GB")


def test_kubernetes_spec_with_tenant_namespace() -> None:
    config = ManagerConfig(
        environments_runtime="kubernetes",
        environments_domain="d.example",
        tenant_namespaces=True,
    )
    spec = environment_spec(load_templates()["nodejs"], repl_id="r", tenant="acme", config=config)
    assert spec.runtime == "kubernetes" and spec.kubernetes is not None
    assert spec.kubernetes.namespace == "acme"
    kinds = [m["kind"] for m in spec.kubernetes.manifests]
    assert kinds == ["Namespace", "Deployment", "Service", "Ingress"]
    assert spec.restart_policy.mode is RestartMode.ALWAYS
    assert spec.labels["corral.environment"] == "r" and spec.labels["corral.tenant"] == "acme"
    without = environment_spec(load_templates()["nodejs"], repl_id="r", tenant="", config=config)
    assert without.kubernetes is not None and without.kubernetes.namespace == "default"


def test_docker_and_process_specs() -> None:
    template = load_templates()["python"]
    docker = environment_spec(
        template, repl_id="r", tenant="", config=ManagerConfig(environments_runtime="docker")
    )
    assert docker.image == "python:3.12-alpine"
    assert docker.ports[0].container_port == 8000 and docker.ports[0].host_port == 0
    assert docker.resources.memory_bytes == 256 << 20
    process = environment_spec(
        template, repl_id="r", tenant="", config=ManagerConfig(environments_runtime="process")
    )
    port = process.ports[0].host_port
    assert process.command == ("python3", "-m", "http.server", str(port), "--bind", "127.0.0.1")
    assert process.env["PORT"] == str(port) and process.env["HOST"] == "127.0.0.1"
    assert docker.command[-1] == "0.0.0.0" and docker.env["HOST"] == "0.0.0.0"
    assert process.health_check is not None
    assert process.health_check.probe == TcpProbe(port=port)
