"""Why a task waits: the domain types of ``ExplainTask``.

An ``Explanation`` is a dry run of placement for one task, like ``nomad job
plan``: for every node, whether the task fits there now and every reason it
does not (not only the first, so an operator fixing memory learns about the
missing label too), and the node placement would choose. Computing it
changes nothing: the scheduler's cursor, the allocations and the task stay
as they were (``manager.explaining``).
"""

from __future__ import annotations

from dataclasses import dataclass

from corral.model import NodeId, NodeStatus, Resources, TaskId, TaskState

# The kinds of UnfitReason, in the order they are checked.
KINDS = ("down", "draining", "not_ready", "runtime", "constraint", "cpu", "memory", "disk")


@dataclass(frozen=True, slots=True)
class Reason:
    """One reason a node cannot take a task."""

    kind: str  # one of KINDS
    message: str
    # For a constraint: the label, the value the task wants, the node's ("" when absent).
    label: str = ""
    wanted: str = ""
    actual: str = ""


@dataclass(frozen=True, slots=True)
class NodeFit:
    """Whether a task fits one node now, and why not."""

    node_id: NodeId
    node_name: str
    status: NodeStatus
    reasons: tuple[Reason, ...]
    free: Resources
    capacity: Resources

    @property
    def fits(self) -> bool:
        return not self.reasons


@dataclass(frozen=True, slots=True)
class Explanation:
    task_id: TaskId
    state: TaskState
    message: str
    nodes: tuple[NodeFit, ...]
    chosen_node_id: str
    chosen_node_name: str
    summary: str
