"""The CLI answers bad input with one line naming it, never a traceback (issue 12's cases)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest


def corral(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "corral.cli.main", *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
        # No manager listens there: each case must fail before dialing.
        env={"PATH": "/usr/bin:/bin", "CORRAL_MANAGER": "127.0.0.1:1"},
    )


def deep_yaml(path: Path) -> Path:
    path.write_text("a:\n" + "".join("  " * i + "- \n" for i in range(1, 5000)))
    return path


def deep_json(path: Path) -> Path:
    path.write_text("[" * 5000 + "]" * 5000)
    return path


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["run", "--max-attempts", "-1", "--", "true"], "--max-attempts"),
        (["events", "--from", "-1"], "--from"),
    ],
)
def test_negative_numbers_are_refused_by_name(args: list[str], named: str) -> None:
    done = corral(*args)
    assert done.returncode != 0
    assert named in done.stderr and "Traceback" not in done.stderr


@pytest.mark.parametrize("make", [deep_yaml, deep_json])
def test_a_deeply_nested_spec_file_is_refused(tmp_path: Path, make: object) -> None:
    name = "spec.json" if make is deep_json else "spec.yaml"
    path = make(tmp_path / name)  # type: ignore[operator]
    done = corral("run", "-f", str(path))
    assert done.returncode == 1
    assert "invalid file" in done.stderr and "nested" in done.stderr
    assert "Traceback" not in done.stderr
