"""The manager's feature modules.

Each module exposes ``install(tasks: TaskControl, config: ManagerConfig) ->
Extension``; the manager installs them all at start-up, registers their
services before the server starts, and starts and closes them with it.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence

from manager.config import ManagerConfig
from manager.control import Extension, TaskControl

MODULES = ("manager.jobs", "manager.schedules", "manager.environments")


def install_all(
    tasks: TaskControl, config: ManagerConfig, modules: Sequence[str] | None = None
) -> list[Extension]:
    """Install ``modules`` (default: ``MODULES``, read at call time so tests can patch it)."""
    names = MODULES if modules is None else modules
    return [importlib.import_module(name).install(tasks, config) for name in names]
