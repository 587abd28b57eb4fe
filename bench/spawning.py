"""Child processes for servers and simulated clients, driven over a pipe.

The manager, the echo server and the simulated workers each run in their own
``spawn``-ed process so that CPU is measured per process and a busy client
never steals the server's event loop. The parent talks to a child with
``(command, payload)`` tuples over a ``multiprocessing`` pipe.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import multiprocessing.connection
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

CTX = multiprocessing.get_context("spawn")


@dataclass
class Child:
    process: multiprocessing.process.BaseProcess
    conn: multiprocessing.connection.Connection

    @property
    def pid(self) -> int:
        assert self.process.pid is not None
        return self.process.pid

    async def ask(self, command: str, payload: Any = None, timeout: float = 60.0) -> Any:
        """Send a command and wait for the child's answer; a child's error is raised here."""
        self.conn.send((command, payload))
        return await self.answer(timeout)

    async def answer(self, timeout: float = 60.0) -> Any:
        loop = asyncio.get_running_loop()
        ready = await loop.run_in_executor(None, self.conn.poll, timeout)
        if not ready:
            raise TimeoutError(f"child {self.pid} did not answer in {timeout:.0f} s")
        kind, value = self.conn.recv()
        if kind == "error":
            raise RuntimeError(f"child {self.pid}: {value}")
        return value

    def kill(self) -> None:
        """SIGKILL: what a crashed node looks like to the manager."""
        if self.process.is_alive():
            self.process.kill()
        self.process.join(5)

    async def close(self, timeout: float = 10.0) -> Any:
        """Ask the child to stop cleanly; kill it if it does not."""
        result = None
        if self.process.is_alive():
            with contextlib.suppress(TimeoutError, EOFError, OSError, RuntimeError):
                result = await self.ask("stop", None, timeout)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, self.process.join, timeout)
        self.kill()
        return result


def spawn(target: Callable[..., None], *args: Any) -> Child:
    """Start ``target(conn, *args)`` in a fresh interpreter."""
    parent, child = CTX.Pipe()
    process = CTX.Process(target=target, args=(child, *args), daemon=True)
    process.start()
    child.close()
    return Child(process, parent)


async def serve_commands(
    conn: multiprocessing.connection.Connection,
    handlers: dict[str, Callable[[Any], Any]],
) -> None:
    """The child's loop: answer each command with ``("ok", value)`` or ``("error", text)``.

    ``stop`` is answered and ends the loop. Handlers may be coroutines.
    """
    loop = asyncio.get_running_loop()
    while True:
        try:
            command, payload = await loop.run_in_executor(None, conn.recv)
        except EOFError:
            return  # the parent is gone
        try:
            value = handlers[command](payload)
            if asyncio.iscoroutine(value):
                value = await value
            conn.send(("ok", value))
        except Exception as err:
            conn.send(("error", f"{type(err).__name__}: {err}"))
        if command == "stop":
            return
