"""The gateway keeps no per-request state: after a few thousand mixed requests
(successes, errors, streams cut short) its memory and its task count are flat."""

from __future__ import annotations

import asyncio
import gc
import itertools

import httpx
import psutil
from gateway_fakes import gateway_over_fake
from waiting import eventually

WARMUP = 500
REQUESTS = 2500
CONCURRENCY = 16
MAX_GROWTH = 24 << 20


async def _one(http: httpx.AsyncClient, i: int, task_id: str) -> None:
    kind = i % 8
    if kind == 0:
        r = await http.get("/v1/nodes")
    elif kind == 1:
        r = await http.get("/v1/tasks/nope")
    elif kind == 2:
        r = await http.post("/v1/tasks", json={"spec": {"name": "x", "nope": 1}})
    elif kind == 3:
        r = await http.get("/nodes")
    elif kind == 4:
        r = await http.get(f"/v1/tasks/{task_id}/logs")
    elif kind == 5:
        r = await http.post("/tasks", content=b"{broken")
    elif kind == 6:
        r = await http.get("/nowhere")
    else:
        # A stream the client abandons after its first event.
        async with http.stream("GET", "/v1/events?from_index=1") as s:
            async for _ in s.aiter_lines():
                break
        return
    assert r.status_code in (200, 400, 404), r.text


async def _burst(http: httpx.AsyncClient, n: int, task_id: str, start: int) -> None:
    sem = asyncio.Semaphore(CONCURRENCY)
    counter = itertools.count(start)

    async def guarded() -> None:
        async with sem:
            await _one(http, next(counter), task_id)

    await asyncio.gather(*(guarded() for _ in range(n)))


async def test_memory_and_tasks_stay_flat() -> None:
    limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
    async with (
        gateway_over_fake() as (default, _),
        httpx.AsyncClient(base_url=default.base_url, limits=limits, timeout=30) as http,
    ):
        r = await http.post("/v1/tasks", json={"spec": {"name": "out", "command": ["echo", "hi"]}})
        task_id = r.json()["id"]
        me = psutil.Process()
        await _burst(http, WARMUP, task_id, 0)
        gc.collect()
        tasks_before = len(asyncio.all_tasks())
        rss_before = me.memory_info().rss
        await _burst(http, REQUESTS, task_id, WARMUP)
        gc.collect()
        growth = me.memory_info().rss - rss_before
        # Abandoned streams are cancelled server-side, not left running.
        await eventually(
            lambda: len(asyncio.all_tasks()) <= tasks_before,
            what=lambda: f"{len(asyncio.all_tasks())} tasks left, {tasks_before} before",
        )
        print(f"RSS growth over {REQUESTS} requests: {growth / 2**20:.1f} MiB")
        assert growth < MAX_GROWTH, f"RSS grew by {growth / 2**20:.1f} MiB"
