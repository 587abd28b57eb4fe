"""Every ``--help`` page of the ``corral`` command renders.

Help texts hold usage patterns such as ``[HOST:]PORT[/PROTO]``, which rich
would read as markup and crash on; the walk below finds every command and
group, so a new one is covered without being listed here.
"""

from __future__ import annotations

from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from corral.cli.main import build


def _paths(command: Any, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    # Typer carries its own copy of click: groups are recognised by their commands.
    paths = [prefix]
    for name, sub in sorted((getattr(command, "commands", None) or {}).items()):
        paths += _paths(sub, (*prefix, name))
    return paths


COMMAND = typer.main.get_command(build())
PATHS = _paths(COMMAND)


def test_the_walk_finds_the_commands() -> None:
    assert ("run",) in PATHS and ("node", "drain") in PATHS and ("schedule", "run-once") in PATHS
    assert len(PATHS) > 30


@pytest.mark.parametrize("path", PATHS, ids=lambda p: " ".join(p) or "corral")
def test_help_renders(path: tuple[str, ...]) -> None:
    result = CliRunner().invoke(build(), [*path, "--help"], terminal_width=100)
    assert result.exit_code == 0, result.output + repr(result.exception)
    assert "Usage:" in result.output
    assert "Traceback" not in result.output


def test_run_help_shows_the_port_pattern() -> None:
    result = CliRunner().invoke(build(), ["run", "--help"], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "[HOST:]PORT[/PROTO]" in result.output
