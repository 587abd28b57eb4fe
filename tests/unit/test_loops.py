"""The servers' event loop: uvloop unless CORRAL_EVENT_LOOP says otherwise."""

from __future__ import annotations

import asyncio

import pytest
import uvloop

from corral import loops
from corral.errors import ValidationError


async def _loop_type() -> type:
    return type(asyncio.get_running_loop())


def test_servers_run_on_uvloop_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CORRAL_EVENT_LOOP", raising=False)
    assert loops.chosen() == "uvloop"
    assert loops.run(_loop_type()) is uvloop.Loop


def test_the_standard_loop_on_request(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CORRAL_EVENT_LOOP", "asyncio")
    assert loops.run(_loop_type()) is not uvloop.Loop


def test_an_unknown_loop_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CORRAL_EVENT_LOOP", "trio")
    with pytest.raises(ValidationError) as err:
        loops.run(_loop_type())
    assert err.value.field == "CORRAL_EVENT_LOOP"
    assert "uvloop, asyncio" in str(err.value)


def test_the_worker_runs_on_it_too(monkeypatch: pytest.MonkeyPatch) -> None:
    from worker import server
    from worker.config import WorkerConfig

    ran_on: list[type] = []

    class Serving:
        port = 0

        async def stop(self) -> None:
            return None

    async def serve(config: WorkerConfig) -> Serving:
        ran_on.append(type(asyncio.get_running_loop()))
        return Serving()

    async def signalled() -> None:
        return None

    monkeypatch.delenv("CORRAL_EVENT_LOOP", raising=False)
    monkeypatch.setattr(server, "serve", serve)
    monkeypatch.setattr(server, "until_signalled", signalled)
    server.run(WorkerConfig())
    assert ran_on == [uvloop.Loop]
