"""The attempts a worker runs: start, watch, stop, and how each one ended.

One ``Supervisor`` per worker owns every attempt and drives the runtimes. For
each attempt it runs one small coroutine: start through the runtime, report
RUNNING (with published ports), start health checks, enforce the deadline,
wait for the end and report COMPLETED / FAILED / STOPPED. Every change goes
out through one callback (``emit``) as a domain ``TaskUpdate``; the session
batches them onto the stream. The supervisor knows nothing of gRPC.

Generations fence stale assignments: an assignment whose generation is not
newer than one already started for the task is ignored, so re-delivery is
harmless (assignments are delivered at least once, applied at most once).
Ended attempts are kept in a bounded history for ``ListAttempts`` and logs.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Coroutine, Mapping
from typing import Any

from corral import tracing
from corral.model import (
    Attempt,
    Health,
    NodeId,
    TaskId,
    TaskSpec,
    TaskState,
    TaskUpdate,
)
from worker import health
from worker.fencing import Lease
from worker.metrics import AttemptMetrics
from worker.records import AttemptRecords
from worker.runtimes.base import Adopted, Assignment, AttemptRef, Exit, Runtime, Started, StartError
from worker.supervised import SupervisedAttempt

log = logging.getLogger(__name__)

Emit = Callable[[TaskUpdate], None]


class Supervisor:
    def __init__(
        self,
        runtimes: Mapping[str, Runtime],
        *,
        node_id: NodeId,
        emit: Emit,
        records: AttemptRecords | None = None,
        history: int = 1000,
        metrics: AttemptMetrics | None = None,
    ) -> None:
        self.runtimes = runtimes
        self.node_id = node_id
        self.emit = emit
        self.records = records
        self.history = history
        self.metrics = metrics or AttemptMetrics()
        self._running: dict[str, SupervisedAttempt] = {}
        self._ended: OrderedDict[str, SupervisedAttempt] = OrderedDict()
        # Highest generation started per task: the fence against stale assignments.
        self._highest: dict[TaskId, int] = {}
        # Fire-and-forget stops, referenced so they are not garbage-collected mid-way.
        self._stopping: set[asyncio.Task[None]] = set()

    # -- queries ---------------------------------------------------------------

    @property
    def running_count(self) -> int:
        return len(self._running)

    def running_by_runtime(self) -> dict[str, int]:
        """Attempts running now per runtime, every runtime of this worker included."""
        counts = Counter(a.assignment.spec.runtime for a in self._running.values())
        return {name: counts[name] for name in self.runtimes} | dict(counts)

    def current(self) -> list[TaskUpdate]:
        """The latest update of every attempt still running (for Hello)."""
        return [a.last or a.update() for a in self._running.values()]

    def ended_since(self, since: float) -> list[TaskUpdate]:
        return [
            a.last or a.update()
            for a in self._ended.values()
            if a.finished_at is not None and a.finished_at >= since
        ]

    def attempts(self) -> list[Attempt]:
        return [
            a.as_attempt(self.node_id) for a in [*self._ended.values(), *self._running.values()]
        ]

    def find(self, task_id: TaskId, generation: int = 0) -> tuple[Runtime, AttemptRef] | None:
        """The runtime and ref of an attempt this worker ran; generation 0 = the latest."""
        candidates = [
            a
            for a in [*self._running.values(), *self._ended.values()]
            if a.ref.task_id == task_id
            and (generation in (0, a.ref.generation))
            and a.runtime is not None
        ]
        if not candidates:
            return None
        best = max(candidates, key=lambda a: a.ref.generation)
        assert best.runtime is not None
        return best.runtime, best.ref

    # -- orders ----------------------------------------------------------------

    def apply(self, assignment: Assignment) -> bool:
        """Start the attempt unless its generation is stale; True when started."""
        ref = assignment.ref
        if ref.generation <= self._highest.get(ref.task_id, 0):
            return False
        self._highest[ref.task_id] = ref.generation
        # At most one attempt of a task runs: a newer generation supersedes.
        for older in [a for a in self._running.values() if a.ref.task_id == ref.task_id]:
            self._request_stop(older, TaskState.STOPPED, "superseded by a newer attempt", None)
        attempt = SupervisedAttempt(assignment, self.runtimes.get(assignment.spec.runtime))
        self._running[ref.key] = attempt
        attempt.task = asyncio.get_running_loop().create_task(self._run(attempt))
        return True

    def stop(self, ref: AttemptRef, *, reason: str, grace: float | None = None) -> None:
        """Stop an attempt on the manager's order. Idempotent.

        An attempt that already ended has its final update sent again, and
        one never seen here is reported STOPPED, so the manager converges
        whatever it missed.
        """
        attempt = self._running.get(ref.key)
        if attempt is not None:
            self._request_stop(attempt, TaskState.STOPPED, reason or "stopped", grace)
            return
        ended = self._ended.get(ref.key)
        if ended is not None and ended.last is not None:
            self.emit(ended.last)
            return
        if ref.generation >= self._highest.get(ref.task_id, 0):
            self.emit(
                TaskUpdate(
                    ref.task_id,
                    ref.generation,
                    TaskState.STOPPED,
                    message="not running on this node",
                    time=time.time(),
                )
            )

    def stop_running(self, ref: AttemptRef, *, reason: str) -> None:
        """Stop the attempt if it still runs; nothing is reported otherwise (Reconcile)."""
        attempt = self._running.get(ref.key)
        if attempt is not None:
            self._request_stop(attempt, TaskState.STOPPED, reason, None)

    def stop_task(self, task_id: TaskId, *, reason: str, grace: float | None = None) -> None:
        """Stop every running attempt of a task (a stop order without a generation)."""
        for attempt in [a for a in self._running.values() if a.ref.task_id == task_id]:
            self._request_stop(attempt, TaskState.STOPPED, reason or "stopped", grace)

    def fence(self, lease: Lease) -> None:
        """Stop every attempt whose lease has lapsed past its ``stop_after``.

        They end LOST: the manager replaces them (or has already) by policy,
        and the kill comes inside the TTL, before any replacement can start.
        """
        age = lease.age()
        if age is None:
            return
        terms = lease.terms
        for attempt in list(self._running.values()):
            stop_after = terms.stop_after(attempt.assignment.spec)
            if stop_after is None or age <= stop_after or attempt.stop_state is not None:
                continue
            why = f"no lease from the manager for {age:.1f}s (stop_after {stop_after:g}s)"
            log.warning("fencing %s: %s", attempt.ref.key, why)
            self._request_stop(attempt, TaskState.LOST, why, terms.kill_window(stop_after))

    def _request_stop(
        self, attempt: SupervisedAttempt, state: TaskState, message: str, grace: float | None
    ) -> None:
        if attempt.stop_state is not None:
            return
        attempt.stop_state, attempt.stop_message = state, message
        if attempt.state is TaskState.RUNNING and attempt.runtime is not None:
            wait = attempt.assignment.spec.stop_grace if grace is None else grace
            self._background(attempt.runtime.stop(attempt.ref, wait))
        # Still starting: _run stops it as soon as the runtime has started it.

    def _background(self, stopping: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(stopping)
        self._stopping.add(task)
        task.add_done_callback(self._stopped)

    def _stopped(self, task: asyncio.Task[None]) -> None:
        self._stopping.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("stopping an attempt failed", exc_info=task.exception())

    # -- adoption after a restart -------------------------------------------------

    async def adopt(self) -> None:
        """Take over what the runtimes still run (or found ended) after a restart."""
        saved = self.records.load() if self.records else {}
        for name, runtime in self.runtimes.items():
            try:
                found = await runtime.adopt()
            except Exception:
                log.exception("runtime %s failed to list what it runs", name)
                continue
            for adopted in found:
                self._adopt_one(runtime, adopted, saved.pop(adopted.ref.key, None))
        # Records without a live attempt: the runtime lost them (e.g. the host rebooted).
        for assignment in saved.values():
            self._adopt_one(
                None,
                Adopted(
                    assignment.ref,
                    assignment.spec,
                    exit=Exit(None, "attempt vanished while the worker was down"),
                ),
                assignment,
            )

    def _adopt_one(
        self, runtime: Runtime | None, adopted: Adopted, saved: Assignment | None
    ) -> None:
        spec = adopted.spec or (saved.spec if saved else None)
        if spec is None:
            log.warning(
                "adopted %s without a spec; reporting it as it ends",
                adopted.ref.key,
                extra={"task_id": adopted.ref.task_id, "generation": adopted.ref.generation},
            )
            spec = TaskSpec(name=adopted.ref.task_id, runtime=runtime.name if runtime else "")
        ref = adopted.ref
        self._highest[ref.task_id] = max(self._highest.get(ref.task_id, 0), ref.generation)
        attempt = SupervisedAttempt(Assignment(ref, spec, self.node_id), runtime)
        attempt.state = TaskState.RUNNING
        attempt.ports = adopted.started.ports
        self._running[ref.key] = attempt
        if adopted.exit is not None:
            self._finish(attempt, adopted.exit)
            return
        attempt.task = asyncio.get_running_loop().create_task(
            self._supervise(attempt, adopted.started, announce=False)
        )

    # -- one attempt's life ---------------------------------------------------------

    async def _run(self, attempt: SupervisedAttempt) -> None:
        try:
            started = await self._start(attempt)
            if started is None:
                return
            await self._supervise(attempt, started, announce=True)
        except asyncio.CancelledError:
            raise
        except Exception as err:  # a runtime bug must end the attempt, not the worker
            log.exception(
                "attempt %s failed in its runtime",
                attempt.ref.key,
                extra=attempt.log_fields(self.node_id),
            )
            if attempt.ref.key in self._running:
                self._finish(attempt, Exit(None, f"runtime error: {err}"))

    async def _start(self, attempt: SupervisedAttempt) -> Started | None:
        spec = attempt.assignment.spec
        if attempt.runtime is None:
            self._fail_start(attempt, f"runtime {spec.runtime!r} is not available on this node")
            return None
        if attempt.stop_state is not None:  # stopped before it began
            self._finish(attempt, Exit(None))
            return None
        if self.records is not None:
            self.records.save(attempt.assignment)
        began = time.perf_counter()
        attributes = attempt.span_attributes(self.node_id)
        with tracing.span("worker", "worker.start", attributes=attributes, child_only=True):
            try:
                started = await attempt.runtime.start(attempt.assignment)
            except StartError as err:
                self._fail_start(attempt, str(err))
            except Exception as err:
                log.exception(
                    "starting %s failed", attempt.ref.key, extra=attempt.log_fields(self.node_id)
                )
                self._fail_start(attempt, f"start failed: {err}")
            else:
                self.metrics.started(spec.runtime, time.perf_counter() - began, ok=True)
                return started
        self.metrics.started(spec.runtime, time.perf_counter() - began, ok=False)
        return None

    def _fail_start(self, attempt: SupervisedAttempt, message: str) -> None:
        attempt.stop_state = None
        self._finish(attempt, Exit(None, message))

    async def _supervise(
        self, attempt: SupervisedAttempt, started: Started, *, announce: bool
    ) -> None:
        assert attempt.runtime is not None
        runtime, ref, spec = attempt.runtime, attempt.ref, attempt.assignment.spec
        attempt.state = TaskState.RUNNING
        attempt.ports = started.ports
        if announce:
            self.metrics.reached(spec.runtime, TaskState.RUNNING.name)
            self._publish(attempt, message=started.message)
        if attempt.stop_state is not None:  # a stop arrived while it was starting
            self._background(runtime.stop(ref, spec.stop_grace))
        checker = self._check_health(attempt, started)
        try:
            ended = await self._wait(attempt)
        finally:
            if checker is not None:
                checker.cancel()
        self._finish(attempt, ended)

    async def _wait(self, attempt: SupervisedAttempt) -> Exit:
        assert attempt.runtime is not None
        runtime, spec = attempt.runtime, attempt.assignment.spec
        waiting = asyncio.ensure_future(runtime.wait(attempt.ref))
        if spec.deadline <= 0:
            return await waiting
        remaining = spec.deadline - (time.time() - attempt.created_at)
        try:
            done, _ = await asyncio.wait({waiting}, timeout=max(0.0, remaining))
        except asyncio.CancelledError:
            waiting.cancel()  # the worker is closing; the attempt itself runs on
            raise
        if not done:
            self._request_stop(
                attempt, TaskState.FAILED, f"deadline of {spec.deadline:g}s exceeded", None
            )
        return await waiting

    def _check_health(
        self, attempt: SupervisedAttempt, started: Started
    ) -> asyncio.Task[None] | None:
        check = attempt.assignment.spec.health_check
        if check is None or attempt.runtime is None:
            return None
        runtime, ref = attempt.runtime, attempt.ref

        async def run_exec(argv: tuple[str, ...], timeout: float) -> int:
            return await runtime.exec(ref, argv, timeout)

        async def verdict(healthy: bool, reason: str) -> None:
            if attempt.stop_state is not None:
                return
            if healthy:
                attempt.health = Health.HEALTHY
                self._publish(attempt)
                return
            attempt.health = Health.UNHEALTHY
            self._request_stop(attempt, TaskState.FAILED, f"unhealthy: {reason}", None)

        target = health.Target(started.host, started.ports, run_exec, self.metrics.probed)
        return asyncio.get_running_loop().create_task(health.watch(check, target, verdict))

    # -- the end -------------------------------------------------------------------

    def _finish(self, attempt: SupervisedAttempt, ended: Exit) -> None:
        attempt.end(ended)
        key = attempt.ref.key
        self._running.pop(key, None)
        self._ended[key] = attempt
        while len(self._ended) > self.history:
            self._ended.popitem(last=False)
        if self.records is not None:
            self.records.remove(attempt.ref, attempt.assignment.spec.runtime)
        self.metrics.reached(attempt.assignment.spec.runtime, attempt.state.name)
        if attempt.state is TaskState.FAILED:
            # Successes are many and visible in events; a failure is worth a line here.
            log.info("attempt failed: %s", attempt.message, extra=attempt.log_fields(self.node_id))
        self._publish(attempt, result=ended)

    def _publish(
        self, attempt: SupervisedAttempt, *, message: str = "", result: Exit | None = None
    ) -> None:
        attempt.last = attempt.update(message=message, result=result)
        self.emit(attempt.last)

    async def close(self) -> None:
        """Stop watching; the attempts themselves keep running (adopted on restart)."""
        tasks = {a.task for a in self._running.values() if a.task is not None}
        for task in tasks:
            task.cancel()
        if tasks:
            # asyncio.wait neither raises their CancelledError nor swallows ours.
            await asyncio.wait(tasks, timeout=5.0)
