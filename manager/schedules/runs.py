"""One run of a schedule: submit its tasks, wait for each to end, collect the results.

A run never calls an endpoint itself: each endpoint becomes an ``http`` task
submitted through ``TaskControl``, placed on a worker like any other task, and
its ``HttpResult`` comes back as the task's result. A run's tasks belong to
the schedule's namespace and are labelled with the schedule and the run, so
``corral task ls`` shows where they went.
Cancelling the coroutine (stop, or the replace policy) stops the tasks still
going and ends the run CANCELLED with what was collected so far.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace

from corral.errors import CorralError, DeadlineExceeded, NotFound
from corral.model import HttpResult, Task, TaskId, TaskSpec, TaskState
from corral.schedule_validation import call_of
from corral.schedules import (
    EndpointResult,
    HttpAction,
    Run,
    RunOutcome,
    ScheduleSpec,
    outcome_of,
)
from manager.control import NewTask, TaskControl

log = logging.getLogger(__name__)

SCHEDULE_LABEL = "corral.io/schedule"
RUN_LABEL = "corral.io/run"
# Time a task may wait for a worker before its run gives up on it.
PLACEMENT_SLACK = 30.0


def _slug(text: str, limit: int) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:limit].strip("-") or "x"


def task_name(schedule: str, part: str, run_id: str) -> str:
    """An RFC 1123 label unique per run: <schedule>-<part>-<run id prefix>."""
    return f"{_slug(schedule, 30)}-{_slug(part, 22)}-{run_id[:8]}"


def planned_tasks(spec: ScheduleSpec, run_id: str) -> list[tuple[str, NewTask, float | None]]:
    """(result name, task, how long to wait for it) for each task of a run."""
    labels = {SCHEDULE_LABEL: spec.name, RUN_LABEL: run_id}
    if isinstance(spec.action, HttpAction):
        return [
            (
                e.name,
                NewTask(
                    TaskSpec(
                        name=task_name(spec.name, e.name, run_id),
                        runtime="http",
                        http=call_of(e),
                        labels=labels,
                        namespace=spec.namespace,
                    )
                ),
                e.timeout + PLACEMENT_SLACK,
            )
            for e in spec.action.endpoints
        ]
    template = spec.action.template
    task = replace(
        template,
        name=task_name(spec.name, template.name, run_id),
        labels={**template.labels, **labels},
        namespace=spec.namespace,
    )
    wait = template.deadline + PLACEMENT_SLACK if template.deadline else None
    return [(template.name, NewTask(task), wait)]


def result_of(name: str, task: Task) -> EndpointResult:
    st = task.status
    result = st.result
    if result is None:
        # No response to show: the task's message says why (or that it simply failed).
        failed = st.state is not TaskState.COMPLETED
        result = HttpResult(error=(st.message or f"task ended {st.state.value}") if failed else "")
    return EndpointResult(
        name=name,
        task_id=task.id,
        ok=st.state is TaskState.COMPLETED,
        state=st.state,
        result=result,
    )


async def _collect(
    tasks: TaskControl, name: str, ref: TaskId, wait: float | None
) -> EndpointResult:
    try:
        done = await tasks.wait(ref, lambda t: t.status.state.final, timeout=wait)
    except DeadlineExceeded:
        stopped = await tasks.stop(ref, reason="schedule run gave up waiting")
        failed = result_of(name, stopped)
        problem = (
            f"not finished within {wait:g}s "
            f"(does a worker offer the {stopped.spec.runtime} runtime?)"
        )
        return replace(failed, ok=False, result=replace(failed.result, error=problem))
    except NotFound:
        # The core forgot the task (its store was replaced): nothing more will come.
        return EndpointResult(name=name, task_id=ref, result=HttpResult(error="task not found"))
    return result_of(name, done)


async def execute(
    tasks: TaskControl,
    spec: ScheduleSpec,
    run: Run,
    *,
    save: Callable[[Run], Awaitable[None]],
    now: Callable[[], float],
    abandoned: Callable[[], bool] = lambda: False,
) -> Run:
    """Carry out ``run``; ``save`` persists it once its tasks exist and when it ends.

    Cancelled, it stops its tasks and ends CANCELLED, unless ``abandoned()``
    says the manager is shutting down: then it is left RUNNING in the store and
    ``resume`` picks it up after the restart.
    """
    plan = planned_tasks(spec, run.id)
    try:
        submitted = await tasks.submit([task for _, task, _ in plan])
    except CorralError as err:
        failed = tuple(
            EndpointResult(name=name, result=HttpResult(error=f"not submitted: {err.message}"))
            for name, _, _ in plan
        )
        return await _finish(run, failed, RunOutcome.FAILED, save, now)
    pending = tuple(
        EndpointResult(name=name, task_id=task.id, state=task.status.state)
        for (name, _, _), task in zip(plan, submitted, strict=True)
    )
    run = replace(run, results=pending)
    await save(run)
    waits = [(name, task.id, wait) for (name, _, wait), task in zip(plan, submitted, strict=True)]
    return await _gather(tasks, run, waits, save=save, now=now, abandoned=abandoned)


async def resume(
    tasks: TaskControl,
    run: Run,
    *,
    save: Callable[[Run], Awaitable[None]],
    now: Callable[[], float],
    abandoned: Callable[[], bool] = lambda: False,
) -> Run:
    """Finish collecting a run a previous manager left unfinished."""
    waits = [(r.name, r.task_id, PLACEMENT_SLACK) for r in run.results if r.task_id is not None]
    if len(waits) < len(run.results) or not waits:
        lost = tuple(
            replace(r, result=HttpResult(error="interrupted by a manager restart"))
            for r in run.results
        )
        return await _finish(run, lost, RunOutcome.FAILED, save, now)
    return await _gather(tasks, run, waits, save=save, now=now, abandoned=abandoned)


async def _gather(
    tasks: TaskControl,
    run: Run,
    waits: Sequence[tuple[str, TaskId, float | None]],
    *,
    save: Callable[[Run], Awaitable[None]],
    now: Callable[[], float],
    abandoned: Callable[[], bool],
) -> Run:
    futures = [asyncio.ensure_future(_collect(tasks, n, ref, w)) for n, ref, w in waits]
    try:
        results = tuple(await asyncio.gather(*futures))
    except asyncio.CancelledError:
        for f in futures:
            f.cancel()
        if abandoned():
            raise
        cancelled = await _stop_all(tasks, run.results)
        await _finish(run, cancelled, RunOutcome.CANCELLED, save, now)
        raise
    return await _finish(run, results, outcome_of(results), save, now)


async def _stop_all(
    tasks: TaskControl, pending: tuple[EndpointResult, ...]
) -> tuple[EndpointResult, ...]:
    return tuple([await _stop_one(tasks, r) for r in pending])


async def _stop_one(tasks: TaskControl, pending: EndpointResult) -> EndpointResult:
    assert pending.task_id is not None
    try:
        task = await tasks.stop(pending.task_id, reason="schedule run cancelled")
    except CorralError:
        # Already ended (or gone): keep what it gave.
        try:
            task = await tasks.get(pending.task_id)
        except CorralError:
            return replace(pending, result=HttpResult(error="cancelled"))
    done = result_of(pending.name, task)
    return done if done.ok else replace(done, result=replace(done.result, error="cancelled"))


async def _finish(
    run: Run,
    results: tuple[EndpointResult, ...],
    outcome: RunOutcome,
    save: Callable[[Run], Awaitable[None]],
    now: Callable[[], float],
) -> Run:
    done = replace(run, results=results, outcome=outcome, finished_at=now())
    await save(done)
    return done
