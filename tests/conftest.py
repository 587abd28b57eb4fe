"""Shared fixtures and the one polling helper. Each test has a timeout (pyproject) and
warnings are errors.

Tests wait on events: subscribe (a stream, a queue, a future), then act, then await
what they subscribed to. ``eventually`` is for what has no event to subscribe to (a
row in a store, a file another process writes, a node list behind a poll-only API);
it is the only polling loop in the suite, so its interval and its failure message
are the same everywhere.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import shutil
import socket
import subprocess
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

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


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A loopback port that refuses connections for the whole test.

    The socket stays bound but never listens, so a connection is refused and no
    other process can take the port meanwhile (a port found free, closed and
    reused later may be anyone's by then).
    """
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        yield int(s.getsockname()[1])


@pytest.fixture(scope="module")
def engine() -> Iterator[Any]:
    """A Docker client; skips without an engine, but fails in CI (see docker_engine.py)."""
    from docker_engine import require_engine

    client = require_engine()
    yield client
    client.close()


@pytest.fixture(scope="session")
def corral_image() -> str:
    """The image `make image` builds; skips without it, but fails in CI (where .ci/run
    builds it before the tests)."""
    image = "corral:dev"
    present = shutil.which("docker") is not None and (
        subprocess.run(
            ["docker", "image", "inspect", image], capture_output=True, check=False, timeout=30
        ).returncode
        == 0
    )
    if not present:
        reason = f"no {image} image: run `make image` (needs a Docker engine)"
        if os.environ.get("CI"):
            pytest.fail(f"CI needs this: {reason}")
        pytest.skip(reason)
    return image
