"""``ExplainTask``: why a task waits, node by node, and where it would go now.

A dry run over the same ``NodeSlot``s the placement pass scans, with the
same filter (``scheduling.reasons`` agrees with ``scheduling.unfit``) and a
copy of the scheduler, so the pick is the one a pass would make now without
moving the real scheduler's cursor. Nothing is allocated, stored or sent.
"""

from __future__ import annotations

import copy
import time

from corral.explanations import Explanation, NodeFit
from corral.model import TaskState
from manager.core import TaskManager
from manager.scheduling import explain, reasons


async def explain_task(core: TaskManager, ref: str) -> Explanation:
    """The placement dry run of the task ``ref`` (id or name); NotFound when unknown."""
    task = await core.get(ref)
    slots = core.ledger.registry.slots()
    fits = tuple(
        NodeFit(
            node_id=slot.id,
            node_name=slot.name or slot.id,
            status=slot.status,
            reasons=tuple(reasons(task.spec, slot, status=slot.status.value)),
            free=slot.capacity - slot.allocated,
            capacity=slot.capacity,
        )
        for slot in slots
    )
    chosen = copy.copy(core.scheduler).pick(task.spec, slots)
    chosen_name = "" if chosen is None else (getattr(chosen, "name", "") or chosen.id)
    if chosen is None:
        summary = explain(task.spec, slots)
    elif core.dependencies.held(task.id):
        # Held out of placement: where it would go matters only once its dependencies are met.
        summary = f"{task.status.message}; then it would be placed on {chosen_name}"
    else:
        summary = f"would be placed on {chosen_name}"
        wait_until = task.status.next_attempt_at
        if task.status.state is TaskState.PENDING and wait_until and wait_until > time.time():
            summary += f" after its restart backoff ({wait_until - time.time():.0f}s left)"
    return Explanation(
        task_id=task.id,
        state=task.status.state,
        message=task.status.message,
        nodes=fits,
        chosen_node_id="" if chosen is None else chosen.id,
        chosen_node_name=chosen_name,
        summary=summary,
    )
