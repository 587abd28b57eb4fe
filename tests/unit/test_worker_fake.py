"""The fake runtime: durations, exit codes, failures, stop, and its cost."""

from __future__ import annotations

import asyncio
import time

from corral.model import FakeSpec, TaskId, TaskSpec
from worker.runtimes.base import Assignment, AttemptRef
from worker.runtimes.fake import FakeRuntime


def assign(task: str, fake: FakeSpec, gen: int = 1) -> Assignment:
    spec = TaskSpec(name=task, runtime="fake", fake=fake)
    return Assignment(AttemptRef(TaskId(task), gen), spec, node_id="n1")  # type: ignore[arg-type]


async def test_duration_and_exit_code() -> None:
    rt = FakeRuntime()
    quick = assign("quick", FakeSpec(duration=0.05))
    bad = assign("bad", FakeSpec(exit_code=2))
    started = time.monotonic()
    await rt.start(quick)
    await rt.start(bad)
    assert (await rt.wait(quick.ref)).ok
    assert time.monotonic() - started >= 0.05  # a lower bound: load only makes it later
    ended = await rt.wait(bad.ref)
    assert ended.exit_code == 2 and not ended.ok


async def test_failure_rate_is_respected() -> None:
    rt = FakeRuntime(seed=7)
    refs = []
    for i in range(400):
        a = assign(f"t{i}", FakeSpec(failure_rate=0.25))
        await rt.start(a)
        refs.append(a.ref)
    failed = sum([not (await rt.wait(r)).ok for r in refs])
    assert 60 < failed < 140
    always = assign("always", FakeSpec(failure_rate=1.0))
    await rt.start(always)
    assert (await rt.wait(always.ref)).message == "fake failure"


async def test_stop_ends_a_running_attempt() -> None:
    rt = FakeRuntime()
    a = assign("long", FakeSpec(duration=3600))
    await rt.start(a)
    assert await rt.exec(a.ref, ("true",), 1) == 0
    waiter = asyncio.ensure_future(rt.wait(a.ref))
    await rt.stop(a.ref, grace=1)
    ended = await asyncio.wait_for(waiter, 5)
    assert ended.exit_code == 143 and not ended.ok
    await rt.stop(a.ref, grace=1)  # idempotent
    assert await rt.exec(a.ref, ("true",), 1) == 1
    assert b"".join([c async for c in rt.logs(a.ref, follow=True)]) == b"fake attempt long.1\n"
    assert await rt.adopt() == []


async def test_thousands_of_attempts_are_cheap() -> None:
    rt = FakeRuntime()
    started = time.monotonic()
    assignments = [assign(f"t{i}", FakeSpec(duration=0.2)) for i in range(5000)]
    for a in assignments:
        await rt.start(a)
    results = await asyncio.gather(*(rt.wait(a.ref) for a in assignments))
    assert all(r.ok for r in results)
    # Ended attempts are kept only up to a bound.
    assert len(rt._attempts) <= 1000
    # Generous bound (shared 2-core machine); the point is no per-attempt thread or process.
    assert time.monotonic() - started < 10
    await rt.close()
