"""A task's attempts, oldest first: the ended ones from the store, the live one from memory.

The store records an attempt when it ends; the attempt running now (or
placed and starting) exists only in the task's status until then, so it is
made up from the status: its node, its state and when it was placed.
"""

from __future__ import annotations

from corral.model import ACTIVE_STATES, Attempt
from manager.core import TaskManager

# Attempts shown per task: the latest ones of a task that restarted many times.
LIMIT = 100


async def task_attempts(core: TaskManager, ref: str) -> list[Attempt]:
    """The last ``LIMIT`` attempts of task ``ref`` (id or name); NotFound when unknown."""
    task = await core.get(ref)
    status = task.status
    out: list[Attempt] = []
    for generation in range(max(1, status.generation - LIMIT + 1), status.generation + 1):
        stored = await core.store.attempt(task.id, generation)
        if stored is not None:
            out.append(stored)
        elif generation == status.generation and status.state in ACTIVE_STATES:
            out.append(
                Attempt(
                    task.id,
                    generation,
                    status.node_id,
                    status.state,
                    None,
                    status.message,
                    status.scheduled_at,
                    None,
                )
            )
    return out
