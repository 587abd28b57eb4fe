"""A socket file left behind by a Docker engine that died is "no engine", and costs no socket.

docker-py never closes the socket of a refused connection; with warnings as
errors that leak fails whichever test collects it, far from the cause.
"""

from __future__ import annotations

import gc
import socket
from pathlib import Path

from worker.config import WorkerConfig
from worker.runtimes.docker import create


async def test_a_stale_socket_file_means_unavailable_without_a_leak(tmp_path: Path) -> None:
    path = tmp_path / "docker.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
        listener.bind(str(path))  # the file stays after the close: nothing listens on it
    assert path.exists()
    runtime = create(WorkerConfig(data_dir=tmp_path / "w", docker_host=f"unix://{path}"))
    try:
        assert not await runtime.available()
    finally:
        await runtime.close()
    gc.collect()  # a leaked socket's ResourceWarning is raised here (warnings are errors)
