"""The child processes of ``corral up``: start one, copy its output, wait for a
check unless a child dies, and stop the whole tree.

Each child runs in its own session, so only ``up`` decides when it stops: SIGTERM
to each process group, newest first, then SIGKILL after a grace period, and then
whatever the children started in sessions of their own (a worker's tasks).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import signal
import sys
from collections import deque
from collections.abc import Awaitable

import psutil

from corral.cli.options import errors

STOP_GRACE = 10.0
_KEPT_LINES = 20


@dataclasses.dataclass
class Child:
    name: str
    proc: asyncio.subprocess.Process
    lines: deque[str] = dataclasses.field(default_factory=lambda: deque(maxlen=_KEPT_LINES))
    pump: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self.proc.returncode is None

    def last_words(self) -> str:
        return "\n".join(self.lines) or "(no output)"


class ChildDied(Exception):
    def __init__(self, child: Child) -> None:
        super().__init__(child.name)
        self.child = child


async def spawn(name: str, args: list[str], env: dict[str, str] | None = None) -> Child:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "corral.cli.main",
        *args,
        env={**os.environ, **(env or {})},
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        start_new_session=True,
    )
    child = Child(name, proc)
    child.pump = asyncio.create_task(_pump(child))
    return child


async def _pump(child: Child) -> None:
    assert child.proc.stdout is not None
    async for raw in child.proc.stdout:
        line = raw.decode(errors="replace").rstrip()
        child.lines.append(line)
        sys.stderr.write(f"[{child.name}] {line}\n")
        sys.stderr.flush()


async def until(check: Awaitable[bool], children: list[Child], stop: asyncio.Event) -> bool:
    """Await ``check`` unless a child dies (ChildDied) or a stop is asked (False)."""
    checking = asyncio.ensure_future(check)
    stopping = asyncio.ensure_future(stop.wait())
    dying = {asyncio.ensure_future(c.proc.wait()): c for c in children}
    try:
        done, _ = await asyncio.wait(
            [checking, stopping, *dying], return_when=asyncio.FIRST_COMPLETED
        )
        for fut, child in dying.items():
            if fut in done:
                if child.pump is not None:
                    await child.pump  # the child's last words are in its pipe
                raise ChildDied(child)
        if stopping in done:
            return False
        return bool(checking.result())
    finally:
        for fut in [checking, stopping, *dying]:
            fut.cancel()


async def stop_all(children: list[Child], grace: float) -> None:
    """SIGTERM each group, newest first; SIGKILL whatever is left after ``grace``.

    A worker leaves its tasks running when it stops (a restarted worker adopts
    them), but ``up`` promises that Ctrl-C stops everything: the processes the
    children started, in their own sessions, are stopped after them.
    """
    descendants = _descendants(children)
    for child in reversed(children):
        _signal_group(child, signal.SIGTERM)
    for child in reversed(children):
        try:
            async with asyncio.timeout(grace):
                await child.proc.wait()
        except TimeoutError:
            errors.print(f"corral up: {child.name} ignored SIGTERM; killing it")
        # Helpers the child started in its group go too.
        _signal_group(child, signal.SIGKILL)
        await child.proc.wait()
        if child.pump is not None:
            await child.pump
    await asyncio.to_thread(_terminate, descendants, grace)


def _descendants(children: list[Child]) -> list[psutil.Process]:
    found: list[psutil.Process] = []
    for child in children:
        with contextlib.suppress(psutil.Error):
            found += psutil.Process(child.proc.pid).children(recursive=True)
    return found


def _terminate(processes: list[psutil.Process], grace: float) -> None:
    alive = [p for p in processes if p.is_running()]
    for p in alive:
        with contextlib.suppress(psutil.Error):
            p.terminate()
    _, stubborn = psutil.wait_procs(alive, timeout=grace)
    for p in stubborn:
        with contextlib.suppress(psutil.Error):
            p.kill()


def _signal_group(child: Child, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(child.proc.pid, sig)
