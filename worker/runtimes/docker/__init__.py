"""The ``docker`` runtime: one container per attempt, on a real engine.

Modules: ``engine`` (the SDK's blocking calls in the runtime's own thread
pools, image pulls), ``events`` (exits learned from one engine event stream),
``logs`` (a finished container's output copied to the worker's ``LogStore``
before the container is removed), ``usage`` (node stats), ``runtime``
(``DockerRuntime``: start, watch, stop, exec, adopt). The container itself is
built by ``worker.runtimes.containerspecs``.

Everything created carries ``corral.task-id``, ``corral.generation``,
``corral.node-id`` and ``corral.worker`` (this worker's data dir): a
restarted worker adopts its own containers by label and leaves those of
other workers on the same engine alone; ``reaping`` stops them when their
worker dies and stays dead (see ``worker.fencing``). These are the only
modules that import ``docker`` (an import-linter contract holds it).
"""

from __future__ import annotations

from worker.config import WorkerConfig
from worker.runtimes.docker.runtime import DockerRuntime


def create(config: WorkerConfig) -> DockerRuntime:
    return DockerRuntime(config)


__all__ = ["DockerRuntime", "create"]
