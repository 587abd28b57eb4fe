"""The image `make image` builds: it runs, says its version, runs as a non-root
user, checks its health with the gRPC health protocol and stays small."""

from __future__ import annotations

import json
import subprocess
from importlib import metadata

import pytest

MAX_BYTES = 250_000_000

# Starting containers is slow on a loaded engine; these bound a hang, not the speed.
pytestmark = pytest.mark.timeout(300)


def docker(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["docker", *args], capture_output=True, text=True, timeout=240, check=False
    )


def test_image_prints_the_version(corral_image: str) -> None:
    result = docker("run", "--rm", "--network", "host", corral_image, "--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"corral {metadata.version('corral')}"


def test_image_is_small_non_root_and_health_checked(corral_image: str) -> None:
    inspect = docker("image", "inspect", corral_image)
    assert inspect.returncode == 0, inspect.stderr
    image = json.loads(inspect.stdout)[0]
    assert image["Size"] < MAX_BYTES, f"{image['Size'] / 1e6:.0f} MB"
    config = image["Config"]
    assert config["User"] not in ("", "0", "root")
    assert config["Healthcheck"]["Test"] == ["CMD", "corral", "health"]
    whoami = docker("run", "--rm", "--network", "none", "--entrypoint", "id", corral_image, "-u")
    assert whoami.stdout.strip() == "10001", whoami.stderr


def test_health_command_fails_when_nothing_serves(corral_image: str) -> None:
    # --network none: nothing listens on the container's loopback, so it must say so.
    result = docker("run", "--rm", "--network", "none", corral_image, "health", "--timeout", "1")
    assert result.returncode == 1
    assert "UNREACHABLE" in result.stderr


def test_image_carries_templates_and_ui_as_package_data(corral_image: str) -> None:
    code = (
        "import importlib.resources as r;"
        "from manager.environments.templates import SHIPPED, load_templates;"
        "ui = r.files('gateway.ui');"
        "print(SHIPPED.is_file(), sorted(load_templates(None)),"
        " all(ui.joinpath(f).is_file() for f in ('index.html', 'app.js', 'style.css')))"
    )
    result = docker(
        "run", "--rm", "--network", "none", "--read-only", "--entrypoint", "python3",
        corral_image, "-c", code,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "True ['nodejs', 'python'] True"
