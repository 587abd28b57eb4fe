"""Runtimes, one module each; ``load_runtimes`` keeps those whose backend answers.

Each module exposes ``create(config: WorkerConfig) -> Runtime``. Modules are
imported lazily so a worker without Docker or a cluster never imports their
clients.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
from collections.abc import Iterable

from worker.config import WorkerConfig
from worker.runtimes.base import Runtime

log = logging.getLogger(__name__)

MODULES = {
    "process": "worker.runtimes.process",
    "docker": "worker.runtimes.docker",
    "kubernetes": "worker.runtimes.kubernetes",
    "http": "worker.runtimes.http",
    "fake": "worker.runtimes.fake",
}


async def load_runtimes(
    config: WorkerConfig, names: Iterable[str], *, probe_timeout: float = 3.0
) -> dict[str, Runtime]:
    """Create the named runtimes and keep the available ones."""
    out: dict[str, Runtime] = {}
    for name in names:
        module = importlib.import_module(MODULES[name])
        runtime: Runtime = module.create(config)
        try:
            async with asyncio.timeout(probe_timeout):
                ok = await runtime.available()
        except Exception as err:  # a backend that errors is simply not offered
            log.info("runtime %s unavailable: %s", name, err)
            ok = False
        if ok:
            out[name] = runtime
        else:
            await runtime.close()
    return out
