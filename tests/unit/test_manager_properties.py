"""Random sequences of what happens to a manager, checked after every step (hypothesis).

Submissions, acks, worker updates (current and stale), nodes connecting,
reconnecting with what they run, disconnecting and going down, user stops
and drains go through the planners and the applier (``ledger_sim.Sim``).
As in the manager, every step is followed by a placement pass. After each
step: the indexes agree (``Ledger.check``), a task has at most one live
attempt, generations only grow, each node's allocation is the sum of its
live attempts, and nothing waits PENDING while a node fits it.
"""

from __future__ import annotations

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from corral.model import (
    NodeStatus,
    Resources,
    RestartMode,
    RestartPolicy,
    TaskId,
    TaskSpec,
    TaskState,
    TaskUpdate,
)
from manager.scheduling import unfit
from tests.unit.ledger_sim import Sim

NODES = ("n1", "n2", "n3")
CAPACITIES = st.sampled_from([Resources(1, 1 << 30), Resources(2, 2 << 30), Resources(4, 1 << 30)])
POLICIES = st.sampled_from(
    [
        RestartPolicy(),
        RestartPolicy(mode=RestartMode.ON_FAILURE, max_attempts=3, backoff=0.0),
        RestartPolicy(mode=RestartMode.ALWAYS, max_attempts=0, backoff=1.0, max_backoff=2.0),
        RestartPolicy(mode=RestartMode.ON_FAILURE, max_attempts=1),
    ]
)
NEEDS = st.sampled_from([Resources(), Resources(0.5), Resources(1, 512 << 20), Resources(3)])
REPORTS = st.sampled_from(
    [TaskState.RUNNING, TaskState.COMPLETED, TaskState.FAILED, TaskState.STOPPED]
)


class ManagerMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.sim = Sim(strategy="binpack")
        self.tasks: list[TaskId] = []
        self.generations: dict[TaskId, int] = {}

    # -- what happens ------------------------------------------------------------

    def settle(self) -> None:
        """What the manager's kick does after every change: a placement pass."""
        self.sim.place()

    @rule(need=NEEDS, policy=POLICIES, count=st.integers(1, 3))
    def submit(self, need: Resources, policy: RestartPolicy, count: int) -> None:
        for _ in range(count):
            name = f"task{len(self.tasks)}"
            spec = TaskSpec(name=name, command=("true",), resources=need, restart_policy=policy)
            self.tasks.append(self.sim.submit(spec))
        self.settle()

    @rule(node=st.sampled_from(NODES), capacity=CAPACITIES, keep=st.booleans())
    def connect(self, node: str, capacity: Resources, keep: bool) -> None:
        """A worker (re)connects, reporting what it runs (or, after a restart, nothing)."""
        outbox = self.sim.outboxes.get(node)
        running = outbox.running() if outbox is not None and keep else []
        reports = [TaskUpdate(t, g, TaskState.RUNNING) for t, g in running]
        self.sim.connect(node, capacity, reports)
        self.settle()

    @precondition(lambda self: self.sim.outboxes)
    @rule(data=st.data())
    def ack(self, data: st.DataObject) -> None:
        node = data.draw(st.sampled_from(sorted(self.sim.outboxes)))
        assigned = self.sim.outboxes[node].assigned
        if assigned:
            self.sim.ack(node, data.draw(st.lists(st.sampled_from(assigned), max_size=3)))
        self.settle()

    @precondition(lambda self: any(o.assigned for o in self.sim.outboxes.values()))
    @rule(data=st.data(), state=REPORTS)
    def update(self, data: st.DataObject, state: TaskState) -> None:
        """A worker reports on an attempt it was sent: maybe current, maybe long stale."""
        node = data.draw(st.sampled_from([n for n, o in self.sim.outboxes.items() if o.assigned]))
        task, generation = data.draw(st.sampled_from(self.sim.outboxes[node].assigned))
        self.sim.update(node, TaskUpdate(task, generation, state, exit_code=1))
        self.settle()

    @precondition(lambda self: self.sim.outboxes)
    @rule(data=st.data())
    def disconnect(self, data: st.DataObject) -> None:
        self.sim.disconnect(data.draw(st.sampled_from(sorted(self.sim.outboxes))))
        self.settle()

    @precondition(lambda self: self.sim.outboxes)
    @rule(data=st.data())
    def node_lost(self, data: st.DataObject) -> None:
        node = data.draw(st.sampled_from(sorted(self.sim.outboxes)))
        if self.sim.record(node).status is not NodeStatus.DOWN:
            self.sim.node_down(node)
        self.settle()

    @precondition(lambda self: self.tasks)
    @rule(data=st.data())
    def stop(self, data: st.DataObject) -> None:
        task = data.draw(st.sampled_from(self.tasks))
        if not self.sim.state(task).final:
            self.sim.stop(task)
        self.settle()

    @precondition(lambda self: self.sim.outboxes)
    @rule(data=st.data())
    def drain(self, data: st.DataObject) -> None:
        node = data.draw(st.sampled_from(sorted(self.sim.outboxes)))
        if self.sim.record(node).status is not NodeStatus.DOWN:
            self.sim.drain(node)
        self.settle()

    @rule(seconds=st.sampled_from([0.5, 1.0, 3.0]))
    def time_passes(self, seconds: float) -> None:
        self.sim.now += seconds
        self.settle()

    # -- what must hold ------------------------------------------------------------

    @invariant()
    def indexes_agree(self) -> None:
        assert self.sim.ledger.check() == []

    @invariant()
    def at_most_one_live_attempt_per_task(self) -> None:
        listed: dict[TaskId, str] = {}
        for record in self.sim.ledger.registry:
            for task in record.tasks:
                assert task not in listed, f"{task} on {listed[task]} and {record.id}"
                listed[task] = record.id

    @invariant()
    def generations_only_grow(self) -> None:
        for task in self.tasks:
            generation = self.sim.task(task).status.generation
            assert generation >= self.generations.get(task, 0)
            self.generations[task] = generation

    @invariant()
    def allocations_are_the_sum_of_live_attempts(self) -> None:
        for record in self.sim.ledger.registry:
            total = Resources()
            for task in record.tasks:
                total = total + self.sim.task(task).spec.resources
            assert abs(total.cpu - record.allocated.cpu) < 1e-9
            assert total.memory_bytes == record.allocated.memory_bytes

    @invariant()
    def nothing_pending_while_a_node_fits_it(self) -> None:
        nodes = self.sim.ledger.nodes()
        for task_id in self.sim.ledger.pending():
            task = self.sim.task(task_id)
            due = task.status.next_attempt_at
            if due is not None and due > self.sim.now:
                continue  # waiting out its restart backoff
            fits = [n.id for n in nodes if unfit(task.spec, n) is None]
            assert not fits, f"{task_id} PENDING ({task.status.message}) while {fits} fit"

    @invariant()
    def active_tasks_are_on_the_node_they_name(self) -> None:
        for task in self.tasks:
            status = self.sim.task(task).status
            if status.state in (TaskState.SCHEDULED, TaskState.RUNNING):
                assert task in self.sim.record(status.node_id).tasks


ManagerMachine.TestCase.settings = settings(
    max_examples=60,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_manager_properties = ManagerMachine.TestCase
