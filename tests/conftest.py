"""Shared fixtures (the helpers to wait with live in waiting.py). Each test has a
timeout (pyproject) and warnings are errors.

Tests wait on events: subscribe (a stream, a queue, a future), then act, then await
what they subscribed to. ``eventually`` is for what has no event to subscribe to (a
row in a store, a file another process writes, a node list behind a poll-only API);
it is the only polling loop in the suite, so its interval and its failure message
are the same everywhere.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest
from waiting import INTERVAL, eventually, free_port, reported_port

__all__ = ["INTERVAL", "eventually", "free_port", "reported_port"]


@pytest.fixture(autouse=True)
def _logging_as_it_was() -> Iterator[None]:
    """A server command run in-process (``corral manager`` through CliRunner) points the
    root logger at stderr at INFO; left so, every later test's library chatter (aiohttp's
    access log) lands in whatever stderr a CliRunner captures, and its JSON no longer
    parses. Take back what ``corral.logformat.configure`` installed."""
    from corral.logformat import StderrHandler

    root = logging.getLogger()
    level = root.level
    yield
    for handler in list(root.handlers):
        if isinstance(handler, StderrHandler):
            root.removeHandler(handler)
    root.setLevel(level)


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
