"""ExplainTask: every reason per node, the dry-run pick, through gRPC, REST and the CLI."""

from __future__ import annotations

import asyncio
import itertools
import json
from pathlib import Path

import pytest
from click.testing import Result
from observe_stack import sample, stack
from typer.testing import CliRunner

from corral.cli import main
from corral.errors import NotFound
from corral.model import Dependency, NodeId, Resources, TaskSpec, TaskState
from manager.scheduling import NodeSlot, reasons, unfit

GI = 1 << 30


def node(**kw: object) -> NodeSlot:
    base: dict[str, object] = {
        "id": NodeId("n1"),
        "capacity": Resources(2, 4 * GI, 10 * GI),
        "labels": {"zone": "a"},
        "runtimes": ("process",),
    }
    return NodeSlot(**{**base, **kw})  # type: ignore[arg-type]


def spec(**kw: object) -> TaskSpec:
    return TaskSpec(**{"name": "t", "command": ("true",), **kw})  # type: ignore[arg-type]


def test_every_reason_is_listed_not_only_the_first() -> None:
    wanting = spec(
        runtime="docker",
        constraints={"zone": "b", "gpu": "yes"},
        resources=Resources(4, 8 * GI, 20 * GI),
    )
    found = reasons(wanting, node(schedulable=False), status="draining")
    assert [r.kind for r in found] == [
        "draining",
        "runtime",
        "constraint",
        "constraint",
        "cpu",
        "memory",
        "disk",
    ]
    zone, gpu = found[2], found[3]
    assert (zone.label, zone.wanted, zone.actual) == ("zone", "b", "a")
    assert (gpu.label, gpu.wanted, gpu.actual) == ("gpu", "yes", "")
    assert gpu.message == "needs gpu=yes; has no label gpu"
    assert found[4].message == "needs 4 cpu; 2 free"
    assert found[5].message == "needs 8Gi memory; 4Gi free"


def test_a_node_without_a_stream_is_not_ready_and_a_down_one_down() -> None:
    assert [r.kind for r in reasons(spec(), node(schedulable=False))] == ["not_ready"]
    assert [r.kind for r in reasons(spec(), node(schedulable=False), status="down")] == ["down"]


def test_allocations_count_against_the_free_room() -> None:
    busy = node(allocated=Resources(1.5, 3 * GI, 0))
    found = reasons(spec(resources=Resources(1, GI)), busy)
    assert [r.message for r in found] == ["needs 1 cpu; 0.5 free"]


CASES = list(
    itertools.product(
        [True, False],  # schedulable
        ["process", "docker"],  # runtime
        [{}, {"zone": "a"}, {"zone": "b"}],  # constraints
        [Resources(), Resources(2), Resources(3), Resources(0, 5 * GI), Resources(0, 0, 11 * GI)],
    )
)


@pytest.mark.parametrize(("schedulable", "runtime", "constraints", "need"), CASES)
def test_reasons_agree_with_the_placement_filter(
    schedulable: bool, runtime: str, constraints: dict[str, str], need: Resources
) -> None:
    """What ExplainTask says must be what placement does: no reason exactly when unfit is None."""
    slot = node(schedulable=schedulable)
    wanted = spec(runtime=runtime, constraints=constraints, resources=need)
    found = reasons(wanted, slot)
    assert (unfit(wanted, slot) is None) == (not found)
    if found:
        # unfit reports one of the listed reasons (its first check that fails).
        assert unfit(wanted, slot) is not None


async def cli(*args: str) -> Result:
    """The CLI runs its own event loop: in a thread, beside the test's."""
    return await asyncio.to_thread(CliRunner().invoke, main.build(), list(args))


async def test_explain_a_pending_task_everywhere(tmp_path: Path) -> None:
    async with stack(tmp_path, labels={"zone": "a"}) as s:
        core = s.manager.core
        wanting = spec(constraints={"zone": "b"}, resources=Resources(cpu=1))
        task = await s.client.submit(wanting)
        async for event in s.client.watch_events(1, kinds=("task.",)):
            if event.task is not None and event.task.status.message.startswith("no node fits"):
                break
        cursor, allocated = core.scheduler._cursor, [r.allocated for r in core.ledger.registry]

        found = await s.client.explain_task(task.id)
        assert found.state is TaskState.PENDING and found.chosen_node_id == ""
        assert found.summary == "no node fits: 1 lacks label zone=b"
        (only,) = found.nodes
        assert only.node_name == "w1" and not only.fits
        assert [(r.kind, r.label, r.wanted, r.actual) for r in only.reasons] == [
            ("constraint", "zone", "b", "a")
        ]
        # A dry run: nothing moved.
        assert core.scheduler._cursor == cursor
        assert [r.allocated for r in core.ledger.registry] == allocated
        assert (await s.client.get_task(task.id)).status.state is TaskState.PENDING

        reply = await s.http.get(f"/v1/tasks/{task.id}:explain")
        assert reply.status_code == 200, reply.text
        body = reply.json()
        assert body["summary"] == found.summary and body["state"] == "TASK_STATE_PENDING"
        assert body["nodes"][0]["reasons"][0] == {
            "kind": "constraint",
            "message": "needs zone=b; has zone=a",
            "label": "zone",
            "wanted": "b",
            "actual": "a",
        }
        assert (await s.http.get("/v1/tasks/nope:explain")).status_code == 404
        with pytest.raises(NotFound):
            await s.client.explain_task("nope")

        target = f"127.0.0.1:{s.manager.port}"
        result = await cli("task", "explain", wanting.name, "--manager", target)
        assert result.exit_code == 0, result.output
        assert "no node fits: 1 lacks label zone=b" in result.output
        assert "needs zone=b; has zone=a" in result.output
        result = await cli("task", "explain", task.id, "--manager", target, "-o", "json")
        assert result.exit_code == 0, result.output
        assert json.loads(result.output)["nodes"][0]["fits"] is False
        result = await cli("task", "explain", "nope", "--manager", target)
        assert result.exit_code == 1 and "Traceback" not in result.output
        assert "nope" in result.output


async def test_explain_names_the_node_placement_would_choose(tmp_path: Path) -> None:
    async with stack(tmp_path) as s:
        task = await s.client.submit(spec(name="fine"))
        await s.client.wait(task.id, timeout=30)
        found = await s.client.explain_task("fine")
        assert found.chosen_node_name == "w1" and found.summary == "would be placed on w1"
        assert found.nodes[0].fits and found.nodes[0].reasons == ()


async def test_a_task_held_for_its_dependencies_says_so(tmp_path: Path) -> None:
    async with stack(tmp_path) as s:
        first = await s.client.submit(spec(name="first", command=("sleep", "30")))
        await s.client.wait(first.id, running=True, timeout=30)
        second = await s.client.submit(spec(name="second", depends_on=(Dependency(first.id),)))
        found = await s.client.explain_task(second.id)
        assert found.state is TaskState.PENDING
        assert found.summary.startswith("waiting for first")
        assert found.summary.endswith("; then it would be placed on w1")
        m = await s.scrape(s.manager.metrics_port)
        assert sample(m, "corral_tasks_pending", reason="dependencies") == 1
        await s.client.stop_task(first.id)
        skipped = await s.client.wait(second.id, timeout=30)
        assert skipped.status.state is TaskState.SKIPPED
        m = await s.scrape(s.manager.metrics_port)
        assert sample(m, "corral_tasks_skipped_total") == 1
        assert sample(m, "corral_tasks", state="SKIPPED") == 1
