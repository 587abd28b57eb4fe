"""The corral command as the seed projects' users drive it, against the in-process fake manager."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
from fake_manager import ThreadedFake
from typer.testing import CliRunner

from corral.cli import main

# Cube's task1.json (the book's repositories keep it beside main.go), verbatim.
CUBE_TASK1 = {
    "ID": "a7aa1d44-08f6-443e-9378-f5884311019e",
    "State": 2,
    "Task": {
        "State": 1,
        "ID": "bb1d59ef-9fc1-4e4b-a44d-db571eeed203",
        "Name": "test-chapter-9.1",
        "Image": "timboring/echo-server:latest",
        "ExposedPorts": {"7777/tcp": {}},
        "PortBindings": {"7777/tcp": "7777"},
        "HealthCheck": "/health",
    },
}
# gokube's task.json: ExposedPort, singular.
GOKUBE_TASK = {
    "ID": "a7aa1d44-08f6-443e-9378-f5884311019e",
    "State": 2,
    "Task": {
        "State": 1,
        "ID": "bb1d59ef-9fc1-4e4b-a44d-db571eeed204",
        "Name": "test-chapter-9.1",
        "Image": "timboring/echo-server:latest",
        "ExposedPort": {"7777/tcp": {}},
        "PortBindings": {"7777/tcp": "7777"},
        "HealthCheck": "/health",
    },
}


@pytest.fixture(scope="module")
def served() -> Iterator[ThreadedFake]:
    fake = ThreadedFake()
    yield fake
    fake.close()


@pytest.fixture
def cli(served: ThreadedFake, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setattr(
        main, "COMMAND_MODULES", ("corral.cli.servers", "corral.cli.tasks", "corral.cli.nodes")
    )
    app: typer.Typer = main.build()
    served.fake.tasks.clear()
    monkeypatch.setenv("CORRAL_MANAGER", served.target)
    runner = CliRunner()

    def invoke(*args: str) -> Any:
        return runner.invoke(app, list(args))

    invoke.fake = served.fake  # type: ignore[attr-defined]
    return invoke


@pytest.mark.parametrize(
    ("doc", "task_id"),
    [
        (CUBE_TASK1, "bb1d59ef-9fc1-4e4b-a44d-db571eeed203"),
        (GOKUBE_TASK, "bb1d59ef-9fc1-4e4b-a44d-db571eeed204"),
        (CUBE_TASK1["Task"], "bb1d59ef-9fc1-4e4b-a44d-db571eeed203"),  # a bare Task
    ],
)
def test_run_takes_cube_and_gokube_task_files(
    cli: Any, tmp_path: Path, doc: dict[str, Any], task_id: str
) -> None:
    file = tmp_path / "task1.json"
    file.write_text(json.dumps(doc, indent=4))
    result = cli("run", "-f", str(file), "-o", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["id"] == task_id
    spec = cli.fake.tasks[task_id].spec
    assert spec.runtime == "docker" and spec.image == "timboring/echo-server:latest"
    assert spec.name == "test-chapter-9-1" and spec.labels["cube.name"] == "test-chapter-9.1"
    assert [(p.container_port, p.host_port) for p in spec.ports] == [(7777, 7777)]


def test_a_bad_cube_file_names_the_field(cli: Any, tmp_path: Path) -> None:
    file = tmp_path / "task1.json"
    file.write_text(json.dumps({"Task": {"Name": "a", "Image": "busybox", "Colour": 1}}))
    result = cli("run", "-f", str(file))
    assert result.exit_code == 1 and 'unknown field "Colour"' in result.stderr
    file.write_text(json.dumps({"Task": {"ID": "nope", "Name": "a", "Image": "busybox"}}))
    result = cli("run", "-f", str(file))
    assert result.exit_code == 1 and "Task.ID" in result.stderr
    assert cli.fake.tasks == {}


def test_short_ids_stay_unique() -> None:
    from corral.output import short_ids

    ids = ["3f1c0b6e-aaaa-4c4e-9a8b-000000000001", "3f1c0b6e-aaab-4c4e-9a8b-000000000002", "x"]
    short = short_ids(ids)
    assert short["x"] == "x"
    assert len({short[i] for i in ids}) == 3 and all(len(short[i]) >= 8 for i in ids[:2])
    assert short_ids(["0d9e1f4b-0000-4000-8000-000000000000"]) == {
        "0d9e1f4b-0000-4000-8000-000000000000": "0d9e1f4b"
    }


def test_task_ls_at_120_columns_is_readable(cli: Any) -> None:
    from rich.console import Console

    from corral.model import Task, TaskId, TaskSpec, TaskState, TaskStatus
    from corral.output import tasks_table

    why = "no node fits: 1 lacks runtime docker"
    tasks = [
        Task(
            TaskId(f"{i}a3b5c7d-1111-4222-8333-444455556666"),
            TaskSpec(name=f"nightly-report-{i}", runtime="docker"),
            TaskStatus(state=state, message=why, node_id="node-1", exit_code=0, created_at=1.0),
        )
        for i, state in enumerate((TaskState.COMPLETED, TaskState.PENDING, TaskState.FAILED))
    ]
    console = Console(width=120, record=True, force_terminal=False)
    console.print(tasks_table(tasks))
    text = console.export_text()
    assert all(len(line) <= 120 for line in text.splitlines())
    for word in ("completed", "pending", "failed", "MESSAGE", why, "0a3b5c7d", "nightly-report-2"):
        assert word in text, word
    assert "1111-4222" not in text  # short ids
