"""The wheel works outside the checkout: `python -m build` makes a wheel and an
sdist, the wheel installs into a fresh virtualenv in another folder, and there
`corral --version` reads the package metadata and `corral up` starts with its
shipped templates and serves the gateway and its web UI.

It installs Corral's dependencies from the package index, so it runs in CI (or
with CORRAL_TEST_WHEEL=1) and skips elsewhere.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import venv
from importlib import metadata
from pathlib import Path

import httpx
import pytest
from deploy_support import IN_CI, ROOT, free_port
from waiting import eventually


def run(*args: str | Path, cwd: Path, timeout: float = 600) -> str:
    result = subprocess.run(
        [str(a) for a in args], cwd=cwd, capture_output=True, text=True, timeout=timeout,
        check=False,
    )  # fmt: skip
    assert result.returncode == 0, f"{args}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result.stdout


@pytest.mark.timeout(900)
def test_wheel_installs_and_runs_outside_the_checkout(tmp_path: Path) -> None:
    if not (IN_CI or os.environ.get("CORRAL_TEST_WHEEL")):
        pytest.skip("installs from the package index: runs in CI or with CORRAL_TEST_WHEEL=1")
    dist = tmp_path / "dist"
    run(sys.executable, "-m", "build", "--outdir", dist, ROOT, cwd=tmp_path)
    version = metadata.version("corral")
    wheel = dist / f"corral-{version}-py3-none-any.whl"
    assert wheel.is_file(), sorted(p.name for p in dist.iterdir())
    assert (dist / f"corral-{version}.tar.gz").is_file()

    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    bin_dir = env_dir / "bin"
    run(bin_dir / "python", "-m", "pip", "install", "-q", wheel, cwd=tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    assert run(bin_dir / "corral", "--version", cwd=elsewhere).strip() == f"corral {version}"

    gateway = f"127.0.0.1:{free_port()}"
    out = elsewhere / "up.out"
    with out.open("wb") as sink:
        up = subprocess.Popen(
            [
                bin_dir / "corral", "up",
                "--manager-listen", f"127.0.0.1:{free_port()}",
                "--worker-listen", "127.0.0.1:0",
                "--gateway-listen", gateway,
            ],
            cwd=elsewhere, stdout=sink, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )  # fmt: skip
    try:

        def announced() -> bool:
            # `up` announces readiness only in its output.
            assert up.poll() is None, out.read_text()
            return "Corral is up" in out.read_text()

        asyncio.run(eventually(announced, timeout=120, interval=0.2, what=out.read_text))
        # The environments extension loaded the templates shipped inside the package.
        health = httpx.get(f"http://{gateway}/health", timeout=10)
        assert health.status_code == 200, health.text
        # The web UI comes out of the installed package, script and style included.
        page = httpx.get(f"http://{gateway}/ui/", timeout=10)
        assert page.status_code == 200 and "<html" in page.text.lower(), page.text[:200]
        for asset in ("app.js", "style.css"):
            assert httpx.get(f"http://{gateway}/ui/{asset}", timeout=10).status_code == 200
        assert (elsewhere / ".corral").is_dir()
    finally:
        up.send_signal(signal.SIGINT)
        assert up.wait(timeout=60) == 0, out.read_text()
