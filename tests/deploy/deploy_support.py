"""What the deployment tests share: where the checkout is, and the one rule about
what they need (skip on a developer's machine, fail in CI)."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
IN_CI = bool(os.environ.get("CI"))


def need(condition: bool, reason: str) -> None:
    """Skip without ``condition`` on a developer's machine; fail in CI."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"CI needs this: {reason}")
    pytest.skip(reason)


def free_port() -> int:
    """A loopback port free right now. Compose needs its ports before the stack starts,
    so this is the one place that picks them ahead (a rare collision fails `up` loudly)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
