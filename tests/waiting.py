"""Waiting in tests: the one polling helper, the port a server reported, and a free port.

A plain module, not conftest.py: test folders may have conftest.py files of their own,
and ``from conftest import ...`` would then find whichever conftest was imported last.
"""

from __future__ import annotations

import asyncio
import inspect
import socket
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

INTERVAL = 0.02


async def eventually(
    check: Callable[[], T | Awaitable[T]],
    *,
    timeout: float = 15.0,
    interval: float = INTERVAL,
    what: str | Callable[[], str] = "",
    ignoring: tuple[type[BaseException], ...] = (),
) -> T:
    """Call ``check`` (sync or async) until it returns something truthy; return that.

    Fails with an AssertionError after ``timeout`` seconds, naming ``what`` (a
    string, or a callable for text computed only on failure, such as a child's
    logs) and the last value or error seen. Exceptions of the types in
    ``ignoring`` count as "not yet" (a server still starting refuses calls);
    any other exception fails the test at once.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    last: object = None
    while True:
        try:
            result = check()
            if inspect.isawaitable(result):
                result = await result
            if result:
                return result  # type: ignore[return-value]
            last = result
        except ignoring as err:
            last = err
        if loop.time() > deadline:
            described = what() if callable(what) else what
            raise AssertionError(
                f"not true after {timeout} s: {described or repr(check)} (last: {last!r})"
            )
        await asyncio.sleep(interval)


async def reported_port(
    path: Path, *, alive: Callable[[], bool] = lambda: True, logs: Callable[[], str] = str
) -> int:
    """The port a server started with ``--listen HOST:0 --port-file path`` got.

    Servers write the file by renaming it into place once they listen
    (``corral.serving.write_port_file``), so its presence means "serving".
    Fails at once if ``alive()`` turns false, with ``logs()``.
    """

    def written() -> str:
        if path.exists():
            return path.read_text()
        assert alive(), f"the server exited before it reported its port:\n{logs()}"
        return ""

    text = await eventually(written, timeout=60, what=lambda: f"{path} written\n{logs()}")
    return int(text)


def free_port() -> int:
    """A port that was free a moment ago. Racy (another process may take it before it
    is used): prefer port 0 and ``reported_port``, or ``closed_port``."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
