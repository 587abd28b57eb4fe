"""Placement: filter the nodes a task can run on, then score them.

Pure logic over ``NodeSlot``s (a node as the scheduler sees it: capacity,
what the manager has allocated on it, labels, runtimes, and whether it takes
new work). Nothing here knows about gRPC or SQLite; the caller records the
chosen placement (``NodeSlot.allocate``, on the placement planner's copy of
the node, see ``manager.placing``) so the next pick in the same pass sees the
allocation: allocations are tracked, never re-read from stats.

Large clusters: like Nomad's limit iterator, a pick scores only a bounded
sample of feasible nodes, scanned from a rotating offset, so a placement
costs O(sample) on a cluster with free room instead of O(nodes). Small
clusters (nodes <= sample) are scored exhaustively, which keeps the results
exact (and the unit tests' worked numbers meaningful).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from corral.explanations import Reason
from corral.model import NodeId, Resources, TaskSpec

# Cube's base for E-PVM costs (the "LIEB" constant, Lieb's square ice constant).
LIEB = 1.53960071783900203869
DEFAULT_SAMPLE = 8


@dataclass(eq=False)
class NodeSlot:
    """A node as the scheduler sees it; ``allocated`` is what the manager placed there."""

    id: NodeId
    capacity: Resources = Resources()
    allocated: Resources = Resources()
    labels: Mapping[str, str] = field(default_factory=dict)
    runtimes: tuple[str, ...] = ()
    # READY and connected: takes new placements.
    schedulable: bool = True
    task_count: int = 0

    @property
    def free(self) -> Resources:
        return self.capacity - self.allocated

    def allocate(self, need: Resources) -> None:
        self.allocated = self.allocated + need
        self.task_count += 1

    def release(self, need: Resources) -> None:
        left = self.allocated - need
        # Never below zero: a release replayed twice must not invent capacity.
        self.allocated = Resources(
            max(0.0, left.cpu), max(0, left.memory_bytes), max(0, left.disk_bytes)
        )
        self.task_count = max(0, self.task_count - 1)


def unfit(spec: TaskSpec, node: NodeSlot) -> str | None:
    """Why ``node`` cannot take ``spec`` (a short plural-friendly reason), or None if it can."""
    if not node.schedulable:
        return "not ready"
    if spec.runtime not in node.runtimes:
        return f"runtime {spec.runtime}"
    for key, value in spec.constraints.items():
        if node.labels.get(key) != value:
            return f"label {key}={value}"
    # Field by field rather than through ``node.free``: this runs per node per pick.
    need, cap, used = spec.resources, node.capacity, node.allocated
    if need.cpu and need.cpu > cap.cpu - used.cpu + 1e-9:
        return "cpu"
    if need.memory_bytes and need.memory_bytes > cap.memory_bytes - used.memory_bytes:
        return "memory"
    if need.disk_bytes and need.disk_bytes > cap.disk_bytes - used.disk_bytes:
        return "disk"
    return None


def explain(spec: TaskSpec, nodes: Sequence[NodeSlot]) -> str:
    """The PENDING reason, e.g. ``no node fits: 2 lack memory, 1 lacks runtime docker``."""
    if not nodes:
        return "no node fits: no nodes registered"
    counts = Counter(reason for node in nodes if (reason := unfit(spec, node)) is not None)
    parts = []
    for reason, count in counts.most_common():
        if reason == "not ready":
            parts.append(f"{count} not ready")
        else:
            parts.append(f"{count} {'lacks' if count == 1 else 'lack'} {reason}")
    return "no node fits: " + ", ".join(parts)


def reasons(spec: TaskSpec, node: NodeSlot, *, status: str = "ready") -> list[Reason]:
    """Every reason ``node`` cannot take ``spec`` (empty when it can), for ``ExplainTask``.

    ``unfit`` stops at the first reason because it runs per node per pick;
    this one is for people, so it lists them all, with numbers. ``status`` is
    the node's status (``ready``, ``draining``, ``down``): a node that is not
    schedulable while ready has no live stream. The two agree: ``unfit`` is
    None exactly when this is empty (a unit test holds them to it).
    """
    out: list[Reason] = []
    if not node.schedulable:
        if status in ("draining", "down"):
            out.append(Reason(status, f"node is {status}"))
        else:
            out.append(Reason("not_ready", "node is not connected"))
    if spec.runtime not in node.runtimes:
        offered = ", ".join(node.runtimes) or "none"
        out.append(Reason("runtime", f"needs runtime {spec.runtime}; offers {offered}"))
    for key, value in spec.constraints.items():
        actual = node.labels.get(key)
        if actual != value:
            has = f"has {key}={actual}" if actual is not None else f"has no label {key}"
            why = f"needs {key}={value}; {has}"
            out.append(Reason("constraint", why, key, value, actual or ""))
    need, free = spec.resources, node.capacity - node.allocated
    if need.cpu and need.cpu > free.cpu + 1e-9:
        out.append(Reason("cpu", f"needs {need.cpu:g} cpu; {max(0.0, free.cpu):g} free"))
    if need.memory_bytes and need.memory_bytes > free.memory_bytes:
        out.append(Reason("memory", _bytes_reason("memory", need.memory_bytes, free.memory_bytes)))
    if need.disk_bytes and need.disk_bytes > free.disk_bytes:
        out.append(Reason("disk", _bytes_reason("disk", need.disk_bytes, free.disk_bytes)))
    return out


def _bytes_reason(what: str, need: int, free: int) -> str:
    return f"needs {_size(need)} {what}; {_size(max(0, free))} free"


def _size(n: int) -> str:
    for unit, scale in (("Gi", 1 << 30), ("Mi", 1 << 20), ("Ki", 1 << 10)):
        if n >= scale:
            return f"{n / scale:.3g}{unit}"
    return f"{n}B"


def _fraction(used: float, capacity: float) -> float:
    if capacity <= 0:
        return 0.0 if used <= 0 else math.inf
    return used / capacity


def utilization(node: NodeSlot, extra: Resources = Resources()) -> float:
    """Mean of the cpu and memory shares allocated, with ``extra`` added."""
    used, cap = node.allocated, node.capacity
    # Divisions inline when capacities are known: this runs per sampled node per pick.
    cpu, memory = used.cpu + extra.cpu, used.memory_bytes + extra.memory_bytes
    cpu = cpu / cap.cpu if cap.cpu > 0 else _fraction(cpu, cap.cpu)
    if cap.memory_bytes > 0:
        memory_share = memory / cap.memory_bytes
    else:
        memory_share = _fraction(memory, cap.memory_bytes)
    return (cpu + memory_share) / 2


def epvm_cost(spec: TaskSpec, node: NodeSlot) -> float:
    """E-PVM marginal cost of placing ``spec`` on ``node`` (lower is better).

    The opportunity cost of a resource loaded to fraction ``u`` is ``B**u``;
    placing a task that needs fraction ``d`` raises it by ``B**(u+d) - B**u``.
    The cost is the sum over cpu and memory, so the pick is the node whose
    cost rises least. Cube's version had three defects, fixed here:

    - its CPU term was ``B**load + B**k' - B**load - B**k``: the load terms
      cancelled, so CPU never affected the pick. Here the CPU term compares
      the allocated CPU share before and after the task's request.
    - it mixed units (task memory divided by 1000, node memory in KiB) so
      the memory share was off by orders of magnitude. Here everything is
      cores over cores and bytes over bytes.
    - it read allocations that were never updated, so every pick in a burst
      saw the same empty nodes. Here ``NodeSlot.allocated`` is updated by the
      caller after every placement, within one scheduling pass too.

    Cube's arbitrary ``maxJobs = 4`` task-count term is dropped; the task
    count only breaks ties (see ``SCORES``).
    """
    before, after = node.allocated, node.allocated + spec.resources
    cost = 0.0
    for used0, used1, capacity in (
        (before.cpu, after.cpu, node.capacity.cpu),
        (before.memory_bytes, after.memory_bytes, node.capacity.memory_bytes),
    ):
        if capacity > 0:
            cost += LIEB ** (used1 / capacity) - LIEB ** (used0 / capacity)
    return cost


# Higher key wins; the task count breaks ties.
Score = Callable[[TaskSpec, NodeSlot], tuple[float, float]]
SCORES: dict[str, Score] = {
    # binpack packs what it can measure; tasks that request nothing still spread.
    "binpack": lambda spec, node: (utilization(node, spec.resources), -node.task_count),
    "spread": lambda spec, node: (-utilization(node, spec.resources), -node.task_count),
    "epvm": lambda spec, node: (-epvm_cost(spec, node), -node.task_count),
}
STRATEGIES = ("round-robin", *SCORES)


class Scheduler:
    """Picks a node per task with one strategy; holds only the scan cursor."""

    def __init__(self, strategy: str = "binpack", *, sample: int = DEFAULT_SAMPLE) -> None:
        if strategy not in STRATEGIES:
            raise ValueError(f"strategy must be one of {', '.join(STRATEGIES)}, got {strategy!r}")
        self.strategy = strategy
        self.sample = sample
        self._cursor = 0

    def sample_size(self, nodes: int) -> int:
        # Nomad scores log2(n) candidates for services; a floor keeps small clusters exact.
        return max(self.sample, math.ceil(math.log2(max(nodes, 2))))

    def pick(self, spec: TaskSpec, nodes: Sequence[NodeSlot]) -> NodeSlot | None:
        """The best feasible node in a bounded sample, or None when none fits."""
        index = self.choose(spec, nodes)
        return None if index is None else nodes[index]

    def choose(self, spec: TaskSpec, nodes: Sequence[NodeSlot]) -> int | None:
        """Like ``pick``, the node's index in ``nodes`` (a planner replaces it by its copy)."""
        count = len(nodes)
        if count == 0:
            return None
        limit = 1 if self.strategy == "round-robin" else self.sample_size(count)
        start = self._cursor % count
        found: list[int] = []
        last = start
        for step in range(count):
            index = (start + step) % count
            if unfit(spec, nodes[index]) is None:
                found.append(index)
                last = index
                if len(found) >= limit:
                    break
        if not found:
            return None
        if self.strategy == "round-robin":
            self._cursor = last + 1
            return found[0]
        # Rotate by one per pick: ties then fall on a different node each time.
        self._cursor = start + 1
        score = SCORES[self.strategy]
        return max(found, key=lambda index: score(spec, nodes[index]))
