"""Shared fixtures. Each test has a timeout (pyproject) and warnings are errors."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def engine() -> Iterator[Any]:
    """A Docker client; skips without an engine, but fails in CI (see docker_engine.py)."""
    from docker_engine import require_engine

    client = require_engine()
    yield client
    client.close()
