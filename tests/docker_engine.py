"""The Docker engine the Docker tests run against, and the one rule about it.

Tests that need Docker take the ``engine`` fixture (in conftest.py). Without an
engine that has the test image they skip on a developer's machine and FAIL in
CI, where `.ci/provision-docker.sh` must have provided one.
"""

from __future__ import annotations

import gc
import os
import warnings
from typing import Any

import docker
import docker.errors
import pytest

IMAGE = "corral-test/busybox:latest"
IN_CI = bool(os.environ.get("CI"))


def connect_engine() -> tuple[Any, str]:
    """A client of an engine that has the test image, or why there is none."""
    # docker-py leaves the socket of a refused connection to the GC, which warns.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        try:
            client = docker.from_env(timeout=10)
            client.ping()
            client.images.get(IMAGE)
            return client, ""
        except docker.errors.DockerException as err:
            reason = str(err)
        gc.collect()
    return None, reason


def require_engine() -> Any:
    client, reason = connect_engine()
    if client is None:
        if IN_CI:
            pytest.fail(
                f"CI needs a Docker engine with {IMAGE} (.ci/provision-docker.sh): {reason}"
            )
        pytest.skip(f"no Docker engine with {IMAGE}: {reason}")
    return client
