"""``corral up`` as a user runs it: a subprocess in a fresh directory, then the
CLI against it; SIGINT stops the whole process tree and ``up`` exits 0."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from waiting import eventually, free_port


def corral(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "corral.cli.main", *args],
        capture_output=True, text=True, timeout=90, env=env, cwd=cwd, check=False,
    )  # fmt: skip


class Up:
    def __init__(self, cwd: Path, *extra: str) -> None:
        self.cwd = cwd
        self.manager = f"127.0.0.1:{free_port()}"
        self.gateway = f"127.0.0.1:{free_port()}"
        self.env = {**os.environ, "CORRAL_MANAGER": self.manager}
        self.out = cwd / "up.out"
        self.err = cwd / "up.err"
        with self.out.open("wb") as out, self.err.open("wb") as err:
            self.popen = subprocess.Popen(
                [
                    sys.executable, "-m", "corral.cli.main", "up",
                    "--manager-listen", self.manager,
                    "--worker-listen", f"127.0.0.1:{free_port()}",
                    "--gateway-listen", self.gateway,
                    *extra,
                ],
                cwd=cwd, env=self.env, stdout=out, stderr=err, stdin=subprocess.DEVNULL,
            )  # fmt: skip

    def logs(self) -> str:
        return self.out.read_text() + self.err.read_text()

    async def wait_up(self, timeout: float = 60.0) -> None:
        def announced() -> bool:
            if "Corral is up" in self.out.read_text():
                return True
            assert self.popen.poll() is None, f"up exited {self.popen.returncode}:\n{self.logs()}"
            return False

        await eventually(announced, timeout=timeout, interval=0.1, what=self.logs)

    def tree(self) -> list[psutil.Process]:
        return psutil.Process(self.popen.pid).children(recursive=True)

    def kill(self) -> None:
        for p in [*self.tree(), psutil.Process(self.popen.pid)]:
            with contextlib.suppress(psutil.Error):
                p.kill()


@pytest.fixture
def up(tmp_path: Path) -> Iterator[Up]:
    running = Up(tmp_path)
    yield running
    if running.popen.poll() is None:
        running.kill()
        running.popen.wait(10)


async def test_up_run_logs_and_sigint(up: Up) -> None:
    await up.wait_up()
    out = up.out.read_text()
    assert up.manager in out and up.gateway in out
    assert (up.cwd / ".corral" / "manager").is_dir()
    assert (up.cwd / ".corral" / "worker").is_dir()

    ran = corral("run", "--name", "hello", "--wait", "--", "echo", "hello", env=up.env, cwd=up.cwd)
    assert ran.returncode == 0, ran.stdout + ran.stderr + up.logs()

    async def printed() -> bool:
        logs = await asyncio.to_thread(corral, "logs", "hello", env=up.env, cwd=up.cwd)
        return logs.stdout == "hello\n"

    await eventually(printed, timeout=20, interval=0.1, what=lambda: f"hello logged\n{up.logs()}")

    nodes = corral("node", "ls", "-o", "json", env=up.env, cwd=up.cwd)
    assert nodes.returncode == 0 and '"NODE_STATUS_READY"' in nodes.stdout

    # A task still running when up stops is stopped with everything else.
    sleeper = corral(
        "run", "--name", "sleeper", "--wait", "--", "sleep", "123.4", env=up.env, cwd=up.cwd
    )
    assert sleeper.returncode == 0, sleeper.stderr
    tree = up.tree()
    assert len(tree) >= 4  # manager, worker, gateway, the sleeper
    assert any(p.cmdline() == ["sleep", "123.4"] for p in tree)
    up.popen.send_signal(signal.SIGINT)
    assert up.popen.wait(30) == 0, up.logs()
    _gone, alive = psutil.wait_procs(tree, timeout=5)
    assert not alive, f"left behind: {alive}"


def test_up_fails_when_a_child_cannot_start(tmp_path: Path) -> None:
    # A port already taken makes the manager exit; up stops the rest and says why.
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        up = Up(tmp_path, "--manager-listen", f"127.0.0.1:{port}")
        try:
            code = up.popen.wait(60)
        finally:
            if up.popen.poll() is None:
                up.kill()
    assert code != 0
    assert "manager exited" in up.err.read_text()


async def test_up_stops_everything_when_a_child_dies(up: Up) -> None:
    await up.wait_up()
    tree = up.tree()
    [worker] = [p for p in tree if "worker" in p.cmdline()]
    worker.kill()
    assert up.popen.wait(30) == 1, up.logs()
    assert "worker exited with code -9" in up.err.read_text()
    _, alive = psutil.wait_procs(tree, timeout=5)
    assert not alive, f"left behind: {alive}"
