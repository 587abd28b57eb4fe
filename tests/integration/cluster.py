"""Real ``corral manager`` and ``corral worker`` processes for cluster tests.

Each program runs as ``python -m corral.cli.main ...`` in its own session (so
a SIGKILL of its group takes everything it started in it) with its output in a
file under the test's tmp dir, printed when a wait fails. Servers listen on
port 0 of 127.0.0.1 and report the port they got (``--port-file``); a
restarted manager comes back on the port its first run got. Heartbeats are
short so liveness tests take seconds.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import psutil
from waiting import eventually, reported_port

from corral.client import Client, wait_healthy
from corral.model import Node, NodeStatus

HEARTBEAT = 0.2
TTL = 1.0


class Proc:
    def __init__(self, name: str, args: list[str], log: Path) -> None:
        self.name = name
        self.args = args
        self.log = log
        with log.open("ab") as out:
            self.popen = subprocess.Popen(
                [sys.executable, "-m", "corral.cli.main", *args],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def kill(self) -> None:
        """SIGKILL the whole group, as a crash or an OOM kill would."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)
        self.popen.wait(10)

    def stop(self, timeout: float = 10.0) -> int:
        if self.alive():
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)
        return self.popen.wait(10)


class Cluster:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.manager_port = 0  # until the first manager reports the port it got
        self.procs: list[Proc] = []
        # argv markers of task processes, killed at the end (a SIGKILLed worker orphans them).
        self.markers: list[str] = []

    @property
    def target(self) -> str:
        assert self.manager_port, "the manager has not reported its port yet (manager_ready)"
        return f"127.0.0.1:{self.manager_port}"

    @property
    def _manager_port_file(self) -> Path:
        return self.root / "manager.port"

    def start_manager(self, *extra: str) -> Proc:
        self._manager_port_file.unlink(missing_ok=True)
        args = ["manager", "--listen", f"127.0.0.1:{self.manager_port}"]
        args += ["--port-file", str(self._manager_port_file)]
        args += ["--data-dir", str(self.root / "manager")]
        args += ["--heartbeat-interval", str(HEARTBEAT), "--ttl", str(TTL), *extra]
        return self._start("manager", args)

    def start_worker(self, name: str, *extra: str) -> Proc:
        args = ["worker", "--manager", self.target, "--name", name]
        args += ["--listen", "127.0.0.1:0", "--data-dir", str(self.root / name)]
        args += ["--reconnect-initial", "0.1", "--reconnect-max", "0.5", *extra]
        return self._start(name, args)

    def _start(self, name: str, args: list[str]) -> Proc:
        proc = Proc(name, args, self.root / f"{name}.log")
        self.procs.append(proc)
        return proc

    async def manager_ready(self, proc: Proc, timeout: float = 30.0) -> None:
        """Wait for ``proc`` to report its port (it serves from then on), then for health."""
        self.manager_port = await reported_port(
            self._manager_port_file, alive=proc.alive, logs=proc.output
        )
        if not await wait_healthy(self.target, timeout=timeout):
            raise AssertionError(f"manager not healthy:\n{proc.output()}")

    async def node(
        self, client: Client, name: str, *, status: NodeStatus = NodeStatus.READY,
        timeout: float = 30.0, proc: Proc | None = None,
    ) -> Node:  # fmt: skip
        """Wait until the node called ``name`` has ``status``."""

        async def found() -> Node | None:
            nodes = await client.list_nodes()
            return next((n for n in nodes if n.name == name and n.status is status), None)

        logs = proc.output if proc is not None else str
        return await eventually(
            found, timeout=timeout, what=lambda: f"node {name} {status.value}\n{logs()}"
        )

    def close(self) -> None:
        for proc in reversed(self.procs):
            proc.stop()
        for p in psutil.process_iter(["cmdline"]):
            cmdline = " ".join(p.info["cmdline"] or ())
            if any(marker in cmdline for marker in self.markers):
                with contextlib.suppress(psutil.Error):
                    p.kill()
