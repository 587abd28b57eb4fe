"""Placement: filters, the PENDING reason, and each strategy with worked numbers."""

from __future__ import annotations

import pytest

from corral.model import NodeId, Resources, TaskSpec
from manager.scheduling import (
    LIEB,
    NodeSlot,
    Scheduler,
    epvm_cost,
    explain,
    unfit,
    utilization,
)

G = 1 << 30


def node(
    name: str,
    cpu: float = 4,
    mem: int = 8 * G,
    *,
    used: tuple[float, int] = (0, 0),
    runtimes: tuple[str, ...] = ("process",),
    **kw: object,
) -> NodeSlot:
    return NodeSlot(
        NodeId(name),
        Resources(cpu, mem, 100 * G),
        Resources(used[0], used[1]),
        runtimes=runtimes,
        **kw,  # type: ignore[arg-type]
    )


def task(cpu: float = 0, mem: int = 0, **kw: object) -> TaskSpec:
    return TaskSpec(name="t", command=("x",), resources=Resources(cpu, mem), **kw)  # type: ignore[arg-type]


def test_filters_name_the_first_thing_missing() -> None:
    assert unfit(task(1, G), node("a")) is None
    assert unfit(task(5), node("a")) == "cpu"
    assert unfit(task(1, 9 * G), node("a")) == "memory"
    assert unfit(task(runtime="docker", image="busybox"), node("a")) == "runtime docker"
    assert unfit(task(constraints={"zone": "b"}), node("a", labels={"zone": "a"})) == "label zone=b"
    assert unfit(task(), node("a", schedulable=False)) == "not ready"
    assert unfit(task(1, G), node("a", used=(3.5, 0))) == "cpu"


def test_pending_reason_counts_each_cause() -> None:
    nodes = [
        node("a", mem=G),
        node("b", mem=G),
        node("c", runtimes=("docker",)),
        node("d", schedulable=False),
    ]
    assert explain(task(1, 2 * G), nodes) == (
        "no node fits: 2 lack memory, 1 lacks runtime process, 1 not ready"
    )
    assert explain(task(), []) == "no node fits: no nodes registered"


def test_round_robin_cycles_over_feasible_nodes() -> None:
    nodes = [node("a"), node("b", runtimes=("docker",)), node("c")]
    scheduler = Scheduler("round-robin")
    picks = [scheduler.pick(task(), nodes) for _ in range(4)]
    assert [p.id for p in picks if p] == ["a", "c", "a", "c"]


def test_binpack_prefers_the_fullest_node_that_fits() -> None:
    # a: (1+1)/4 cpu, (2+1)/8 mem -> 0.4375; b: (3+1)/4, (1+1)/8 -> 0.625; c lacks cpu.
    nodes = [node("a", used=(1, 2 * G)), node("b", used=(3, G)), node("c", used=(3.5, 0))]
    assert utilization(nodes[0], Resources(1, G)) == pytest.approx(0.4375)
    assert utilization(nodes[1], Resources(1, G)) == pytest.approx(0.625)
    assert Scheduler("binpack").pick(task(1, G), nodes) is nodes[1]


def test_spread_prefers_the_emptiest_node() -> None:
    nodes = [node("a", used=(1, 2 * G)), node("b", used=(3, G)), node("c", used=(0, 4 * G))]
    # after: a 0.4375, b 0.625, c (0.25 + 0.625)/2 = 0.4375 -> tie, fewer tasks wins.
    nodes[0].task_count = 2
    assert Scheduler("spread").pick(task(1, G), nodes) is nodes[2]


def test_epvm_picks_the_node_whose_cost_rises_least_and_cpu_matters() -> None:
    a = node("a", used=(3, 1 * G))
    b = node("b", used=(0, 4 * G))
    spec = task(1, G)
    # a: cpu 0.75 -> 1.0, mem 0.125 -> 0.25; b: cpu 0 -> 0.25, mem 0.5 -> 0.625.
    cost_a = (LIEB**1.0 - LIEB**0.75) + (LIEB**0.25 - LIEB**0.125)
    cost_b = (LIEB**0.25 - LIEB**0.0) + (LIEB**0.625 - LIEB**0.5)
    assert epvm_cost(spec, a) == pytest.approx(cost_a) == pytest.approx(0.21594, abs=1e-5)
    assert epvm_cost(spec, b) == pytest.approx(cost_b) == pytest.approx(0.18268, abs=1e-5)
    assert Scheduler("epvm").pick(spec, [a, b]) is b
    # Cube's defect: with the CPU term cancelled only memory counts, and a wins.
    memory_only = {n.id: epvm_cost(task(0, G), n) for n in (a, b)}
    assert memory_only["a"] < memory_only["b"]
    assert Scheduler("epvm").pick(task(0, G), [a, b]) is a


def test_allocations_are_tracked_between_picks() -> None:
    nodes = [node("a", cpu=2), node("b", cpu=2)]
    scheduler = Scheduler("epvm")
    placed = []
    for _ in range(4):
        chosen = scheduler.pick(task(1), nodes)
        assert chosen is not None
        chosen.allocate(Resources(1))
        placed.append(chosen.id)
    assert sorted(placed) == ["a", "a", "b", "b"]
    assert scheduler.pick(task(1), nodes) is None
    nodes[0].release(Resources(1))
    assert scheduler.pick(task(1), nodes) is nodes[0]


def test_large_clusters_score_a_bounded_sample() -> None:
    nodes = [node(f"n{i}") for i in range(5000)]
    scheduler = Scheduler("binpack")
    assert scheduler.sample_size(5000) == 13
    calls = 0
    original = nodes[0].__class__.free

    class Counting(NodeSlot):
        @property
        def free(self) -> Resources:
            nonlocal calls
            calls += 1
            return original.fget(self)  # type: ignore[attr-defined, no-any-return]

    counted = [Counting(n.id, n.capacity, n.allocated, runtimes=n.runtimes) for n in nodes]
    assert scheduler.pick(task(1), counted) is not None
    assert calls < 100


def test_unknown_strategy_is_refused() -> None:
    with pytest.raises(ValueError, match="strategy"):
        Scheduler("random")
