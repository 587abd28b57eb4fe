"""The suite's one polling helper: what it returns, how it fails."""

from __future__ import annotations

import pytest
from waiting import eventually


async def test_returns_the_first_truthy_value_of_a_sync_check() -> None:
    values = iter([0, [], "ready"])
    assert await eventually(lambda: next(values), interval=0) == "ready"


async def test_awaits_an_async_check() -> None:
    calls = []

    async def check() -> int:
        calls.append(1)
        return len(calls) if len(calls) == 3 else 0

    assert await eventually(check, interval=0) == 3


async def test_fails_naming_what_and_the_last_value() -> None:
    node = {"status": "DOWN"}
    with pytest.raises(AssertionError, match=r"the node is READY \(last: \[\]\)"):
        await eventually(
            lambda: [s for s in node.values() if s == "READY"],
            timeout=0.05,
            what="the node is READY",
        )


async def test_what_may_be_computed_only_on_failure() -> None:
    with pytest.raises(AssertionError, match="child said: boom"):
        await eventually(lambda: False, timeout=0.01, what=lambda: "child said: boom")


async def test_ignored_errors_mean_not_yet_and_others_fail_at_once() -> None:
    attempts = iter([ConnectionError("refused"), ConnectionError("refused"), "up"])

    def dial() -> str:
        got = next(attempts)
        if isinstance(got, Exception):
            raise got
        return got

    assert await eventually(dial, ignoring=(ConnectionError,), interval=0) == "up"

    def broken() -> bool:
        raise KeyError("typo")

    with pytest.raises(KeyError):
        await eventually(broken, ignoring=(ConnectionError,))
