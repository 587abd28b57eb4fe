"""The corral command with typer's CliRunner against an in-process fake manager."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
from fake_manager import ThreadedFake
from typer.testing import CliRunner

from corral.cli import main, servers
from corral.cli.options import parse_size
from corral.errors import ValidationError
from corral.model import HttpProbe, PortMapping, Resources, RestartMode, TaskState
from manager.config import ManagerConfig
from worker.config import WorkerConfig

# The jobs, schedules and environments command modules are other engineers'; these tests
# exercise only the core command modules.
CORE_MODULES = ("corral.cli.servers", "corral.cli.tasks", "corral.cli.nodes")


@pytest.fixture
def app(monkeypatch: pytest.MonkeyPatch) -> typer.Typer:
    monkeypatch.setattr(main, "COMMAND_MODULES", CORE_MODULES)
    return main.build()


@pytest.fixture(scope="module")
def served() -> Iterator[ThreadedFake]:
    fake = ThreadedFake()
    yield fake
    fake.close()


@pytest.fixture
def cli(app: typer.Typer, served: ThreadedFake, monkeypatch: pytest.MonkeyPatch) -> Any:
    served.fake.tasks.clear()
    monkeypatch.setenv("CORRAL_MANAGER", served.target)
    runner = CliRunner()

    def invoke(*args: str) -> Any:
        return runner.invoke(app, list(args))

    invoke.fake = served.fake  # type: ignore[attr-defined]
    return invoke


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("512Mi", 512 * 1024**2),
        ("1G", 10**9),
        ("1Gi", 1024**3),
        ("1.5Gi", int(1.5 * 1024**3)),
        ("100", 100),
        ("64k", 64_000),
        ("2MiB", 2 * 1024**2),
    ],
)
def test_sizes(text: str, expected: int) -> None:
    assert parse_size(text, "f") == expected


@pytest.mark.parametrize("text", ["", "lots", "-1G", "1Q", "1.2.3M"])
def test_bad_sizes_name_the_field(text: str) -> None:
    with pytest.raises(ValidationError) as caught:
        parse_size(text, "spec.resources.memory_bytes")
    assert caught.value.field == "spec.resources.memory_bytes"


def test_run_maps_every_flag_onto_the_spec(cli: Any) -> None:
    result = cli(
        "run", "--name", "web", "--env", "A=1", "-e", "B=x=y", "--cpu", "0.5",
        "--memory", "512Mi", "--disk", "1G", "--port", "18080:8080", "-p", "53/udp",
        "--restart", "on-failure", "--max-attempts", "3", "--label", "team=core",
        "--constraint", "zone=a", "--health-http", "8080/healthz", "--workdir", "/tmp",
        "--", "python", "-m", "http.server", "--bind", "127.0.0.1",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    [task] = cli.fake.tasks.values()
    assert result.output.strip() == task.id
    s = task.spec
    assert s.command == ("python", "-m", "http.server", "--bind", "127.0.0.1")
    assert dict(s.env) == {"A": "1", "B": "x=y"}
    assert s.resources == Resources(0.5, 512 * 1024**2, 10**9)
    assert s.ports == (PortMapping(8080, 18080, "tcp"), PortMapping(53, 0, "udp"))
    assert s.restart_policy.mode is RestartMode.ON_FAILURE
    assert s.restart_policy.max_attempts == 3
    assert dict(s.labels) == {"team": "core"}
    assert dict(s.constraints) == {"zone": "a"}
    assert s.health_check is not None
    assert s.health_check.probe == HttpProbe(path="/healthz", port=8080)
    assert s.working_dir == "/tmp"


def test_run_without_dashdash(cli: Any) -> None:
    result = cli("run", "--name", "plain", "echo", "-n", "hi")
    assert result.exit_code == 0, result.output
    [task] = cli.fake.tasks.values()
    assert task.spec.command == ("echo", "-n", "hi")


def test_run_from_a_yaml_file_with_flag_overrides(cli: Any, tmp_path: Path) -> None:
    file = tmp_path / "spec.yaml"
    file.write_text(
        "name: from-file\ncommand: [sleep, '5']\nresources: {cpu: 0.25, memoryBytes: '1024'}\n"
        "env: {A: '1'}\nrestartPolicy: {mode: RESTART_MODE_ALWAYS}\n"
    )
    result = cli("run", "-f", str(file), "--env", "B=2", "--id", "chosen", "-o", "json")
    assert result.exit_code == 0, result.output
    task = cli.fake.tasks["chosen"]
    assert task.spec.name == "from-file"
    assert task.spec.command == ("sleep", "5")
    assert task.spec.resources == Resources(0.25, 1024, 0)
    assert dict(task.spec.env) == {"A": "1", "B": "2"}
    assert task.spec.restart_policy.mode is RestartMode.ALWAYS
    assert json.loads(result.stdout)["id"] == "chosen"


def test_run_from_a_json_file(cli: Any, tmp_path: Path) -> None:
    file = tmp_path / "spec.json"
    file.write_text(json.dumps({"id": "j1", "spec": {"name": "j", "command": ["true"]}}))
    result = cli("run", "-f", str(file))
    assert result.exit_code == 0, result.output
    assert cli.fake.tasks["j1"].spec.command == ("true",)


def test_bad_file_field_is_named(cli: Any, tmp_path: Path) -> None:
    file = tmp_path / "spec.yaml"
    file.write_text("name: x\ncomand: [true]\n")
    result = cli("run", "-f", str(file))
    assert result.exit_code == 1
    assert "comand" in result.stderr
    assert cli.fake.tasks == {}


def test_server_validation_error_names_the_field(cli: Any) -> None:
    result = cli("run", "--name", "Not_A_Label", "--", "true")
    assert result.exit_code == 1
    assert "spec.name" in result.stderr
    assert cli.fake.tasks == {}


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (["--memory", "lots"], "spec.resources.memory_bytes"),
        (["--env", "NOEQUALS"], "spec.env[0]"),
        (["--restart", "sometimes"], "spec.restart_policy.mode"),
        (["--port", "x:y"], "spec.ports[0]"),
        (["-o", "yaml"], "output"),
    ],
)
def test_local_parse_errors_name_the_field(cli: Any, args: list[str], field: str) -> None:
    result = cli("run", "--name", "x", *args, "--", "true")
    assert result.exit_code == 1
    assert field in result.stderr
    assert cli.fake.tasks == {}


@pytest.mark.parametrize(
    ("fate", "code", "words"),
    [
        ("running", 0, "running"),
        ("pending", 2, "cannot be placed: no node fits"),
        ("reject", 2, "cannot be placed: no such image"),
        ("fails", 1, "exit code 3"),
    ],
)
def test_run_wait_exit_codes(cli: Any, fate: str, code: int, words: str) -> None:
    result = cli(
        "run", "--name", "w", "--label", f"fate={fate}", "--wait", "--timeout", "0.3",
        "--", "true",
    )  # fmt: skip
    assert result.exit_code == code, result.output
    assert words in (result.stdout if code == 0 else result.stderr)


def test_task_ls_get_stop(cli: Any) -> None:
    assert cli("run", "--name", "alpha", "--", "true").exit_code == 0
    assert cli("run", "--name", "beta", "--label", "fate=pending", "--", "true").exit_code == 0
    table = cli("task", "ls")
    assert table.exit_code == 0
    assert "alpha" in table.stdout and "beta" in table.stdout
    listed = json.loads(cli("task", "ls", "-o", "json", "--state", "pending").stdout)
    assert [t["spec"]["name"] for t in listed] == ["beta"]
    got = json.loads(cli("task", "get", "alpha", "-o", "json").stdout)
    assert got["status"]["state"] == "TASK_STATE_RUNNING"
    assert "running" in cli("task", "get", "alpha").stdout
    stopped = cli("task", "stop", "alpha", "--reason", "done")
    assert stopped.exit_code == 0
    [alpha] = [t for t in cli.fake.tasks.values() if t.spec.name == "alpha"]
    assert alpha.status.state is TaskState.STOPPED
    missing = cli("task", "get", "ghost")
    assert missing.exit_code == 1
    assert "ghost" in missing.stderr


def test_task_ls_rejects_unknown_states(cli: Any) -> None:
    result = cli("task", "ls", "--state", "sleepy")
    assert result.exit_code == 1
    assert "states" in result.stderr


def test_logs_by_name(cli: Any) -> None:
    assert cli("run", "--name", "hello", "--", "echo", "hello").exit_code == 0
    cli.fake.logs = b"first\nhello\n"
    assert cli("logs", "hello").stdout == "first\nhello\n"
    assert cli("logs", "hello", "--tail", "1").stdout == "hello\n"


def test_events_json_lines(cli: Any) -> None:
    for name in ("a", "b"):
        assert cli("run", "--name", name, "--", "true").exit_code == 0
    lines = cli("events", "-o", "json", "--from", "2").stdout.splitlines()
    assert [json.loads(line)["index"] for line in lines] == ["2"]
    assert "task.updated" in cli("events", "--from", "1").stdout


def test_nodes(cli: Any) -> None:
    assert "alpha" in cli("node", "ls").stdout
    [node] = json.loads(cli("node", "ls", "-o", "json").stdout)
    assert node["name"] == "alpha"
    assert json.loads(cli("node", "get", "alpha", "-o", "json").stdout)["id"] == "node-1"
    assert "draining" in cli("node", "drain", "alpha").stdout
    assert cli("node", "get", "nope").exit_code == 1


def test_unreachable_manager_is_a_clear_error(app: typer.Typer, closed_port: int) -> None:
    result = CliRunner().invoke(app, ["node", "ls", "--manager", f"127.0.0.1:{closed_port}"])
    assert result.exit_code == 1
    assert "cannot reach the manager at 127.0.0.1:" in result.stderr


def _params(app: typer.Typer, name: str) -> dict[str, Any]:
    group = typer.main.get_command(app)
    return {p.name: p for p in group.commands[name].params}  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("command", "config"), [("manager", ManagerConfig), ("worker", WorkerConfig)]
)
def test_every_config_field_has_a_flag_and_env_twin(
    app: typer.Typer, command: str, config: type[Any]
) -> None:
    params = _params(app, command)
    for field in dataclasses.fields(config):
        assert field.name in params, field.name
        assert f"--{field.name.replace('_', '-')}" in params[field.name].opts
        assert params[field.name].envvar == f"CORRAL_{field.name.upper()}"


def test_manager_flags_and_env_build_the_config(
    app: typer.Typer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    seen: list[ManagerConfig] = []
    monkeypatch.setattr(servers, "_serve", lambda module, config: seen.append(config))
    monkeypatch.setenv("CORRAL_DATA_DIR", str(tmp_path))
    result = CliRunner().invoke(
        app, ["manager", "--listen", "127.0.0.1:0", "--ttl", "1", "--strategy", "spread"]
    )
    assert result.exit_code == 0, result.output
    [config] = seen
    assert config == ManagerConfig(
        listen="127.0.0.1:0", data_dir=tmp_path, ttl=1.0, strategy="spread"
    )


def test_worker_maps_and_capacity(app: typer.Typer, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[WorkerConfig] = []
    monkeypatch.setattr(servers, "_serve", lambda module, config: seen.append(config))
    monkeypatch.setenv("CORRAL_LABELS", "zone=a,disk=ssd")
    result = CliRunner().invoke(
        app,
        ["worker", "--capacity", "cpu=2,memory=4Gi", "--runtimes", "process,fake"],
    )
    assert result.exit_code == 0, result.output
    [config] = seen
    assert dict(config.labels) == {"zone": "a", "disk": "ssd"}
    assert config.capacity == Resources(2.0, 4 * 1024**3, 0)
    assert config.runtimes == ("process", "fake")
    assert config == dataclasses.replace(
        WorkerConfig(), labels=config.labels, capacity=config.capacity, runtimes=config.runtimes
    )


def test_worker_bad_capacity_names_the_field(
    app: typer.Typer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(servers, "_serve", lambda module, config: None)
    result = CliRunner().invoke(app, ["worker", "--capacity", "gpus=2"])
    assert result.exit_code == 1
    assert "capacity" in result.stderr


def test_sync_facade(served: ThreadedFake) -> None:
    from corral.client import run_sync

    nodes = run_sync(lambda c: c.list_nodes(), served.target)
    assert [n.name for n in nodes] == ["alpha"]
