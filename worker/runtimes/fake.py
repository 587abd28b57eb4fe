"""The ``fake`` runtime: runs nothing, for scheduler tests and benchmarks.

An attempt "runs" for ``spec.fake.duration`` seconds and ends with
``spec.fake.exit_code``, or fails at random with ``spec.fake.failure_rate``.
It is one small record and one timer handle per attempt (no coroutine, no
task) so that one process can host the thousands of attempts of a
benchmark's simulated workers. Nothing survives a worker restart.
"""

from __future__ import annotations

import asyncio
import random
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass

from corral.model import FakeSpec
from worker.config import WorkerConfig
from worker.runtimes.base import Adopted, Assignment, AttemptRef, Exit, Started

KEEP_ENDED = 1000


@dataclass(slots=True)
class _FakeAttempt:
    ended: asyncio.Future[Exit]
    timer: asyncio.TimerHandle | None
    output: bytes


def create(config: WorkerConfig) -> FakeRuntime:
    return FakeRuntime()


class FakeRuntime:
    name = "fake"

    def __init__(self, *, seed: int | None = None) -> None:
        self._attempts: dict[str, _FakeAttempt] = {}
        # Ended attempts are kept (for logs and repeated waits) up to a bound,
        # so a benchmark running tens of thousands stays flat in memory.
        self._ended: deque[str] = deque()
        self._random = random.Random(seed)

    async def available(self) -> bool:
        return True

    async def start(self, assignment: Assignment) -> Started:
        key = assignment.ref.key
        if key in self._attempts:
            return Started(ports=assignment.spec.ports)
        fake = assignment.spec.fake or FakeSpec()
        loop = asyncio.get_running_loop()
        ended: asyncio.Future[Exit] = loop.create_future()
        exit_ = self._outcome(fake)
        timer = None
        if fake.duration > 0:
            timer = loop.call_later(fake.duration, _finish, ended, exit_)
        else:
            ended.set_result(exit_)
        output = f"fake attempt {key}\n".encode()
        self._attempts[key] = _FakeAttempt(ended, timer, output)
        ended.add_done_callback(lambda _: self._retire(key))
        return Started(ports=assignment.spec.ports)

    def _retire(self, key: str) -> None:
        self._ended.append(key)
        while len(self._ended) > KEEP_ENDED:
            self._attempts.pop(self._ended.popleft(), None)

    def _outcome(self, fake: FakeSpec) -> Exit:
        if fake.failure_rate > 0 and self._random.random() < fake.failure_rate:
            return Exit(1, "fake failure")
        message = "" if fake.exit_code == 0 else f"exit code {fake.exit_code}"
        return Exit(fake.exit_code, message)

    async def wait(self, ref: AttemptRef) -> Exit:
        attempt = self._attempts.get(ref.key)
        if attempt is None:
            return Exit(None, "unknown attempt")
        return await asyncio.shield(attempt.ended)

    async def stop(self, ref: AttemptRef, grace: float) -> None:
        attempt = self._attempts.get(ref.key)
        if attempt is None:
            return
        if attempt.timer is not None:
            attempt.timer.cancel()
        _finish(attempt.ended, Exit(143, "killed by SIGTERM"))

    async def logs(
        self, ref: AttemptRef, *, tail: int = 0, follow: bool = False
    ) -> AsyncIterator[bytes]:
        attempt = self._attempts.get(ref.key)
        if attempt is not None:
            yield attempt.output
            if follow:
                await asyncio.shield(attempt.ended)

    async def adopt(self) -> list[Adopted]:
        return []

    async def exec(self, ref: AttemptRef, argv: tuple[str, ...], timeout: float) -> int:
        attempt = self._attempts.get(ref.key)
        return 0 if attempt is not None and not attempt.ended.done() else 1

    async def usage(self) -> tuple[float, int]:
        return 0.0, 0

    async def close(self) -> None:
        for attempt in self._attempts.values():
            if attempt.timer is not None:
                attempt.timer.cancel()


def _finish(ended: asyncio.Future[Exit], exit_: Exit) -> None:
    if not ended.done():
        ended.set_result(exit_)
