"""The lease: one leader, growing terms, takeover on lapse or death, fencing of writes."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import psycopg
import pytest
from pg import pg_cluster, pg_url
from waiting import eventually

from manager.leadership import Fenced, Leadership, check_term
from manager.stores import postgres_schema

LEASE = 1.0

# PostgreSQL fixtures (tests/pg.py); no conftest.py here, which would shadow the root one.
__all__ = ["pg_cluster", "pg_url"]


@pytest.fixture
async def pair(pg_url: str) -> AsyncIterator[tuple[Leadership, Leadership]]:
    a = Leadership(pg_url, advertise="a:1", lease=LEASE, poll=0.02)
    b = Leadership(pg_url, advertise="b:1", lease=LEASE, poll=0.02)
    await asyncio.gather(a.open(), b.open())
    try:
        yield a, b
    finally:
        await a.close()
        await b.close()


async def test_concurrent_migrations_leave_one_current_schema(pg_url: str) -> None:
    managers = [Leadership(pg_url, advertise=f"m{i}:1") for i in range(4)]
    await asyncio.gather(*(m.open() for m in managers))
    try:
        assert await postgres_schema.version(managers[0].conn) == postgres_schema.SCHEMA_VERSION
    finally:
        for m in managers:
            await m.close()


async def test_a_newer_schema_is_refused(pg_url: str) -> None:
    async with await psycopg.AsyncConnection.connect(pg_url, autocommit=True) as conn:
        await postgres_schema.migrate(conn)
        await conn.execute("UPDATE schema_version SET version = version + 1")
    with pytest.raises(postgres_schema.SchemaError, match="newer"):
        await Leadership(pg_url, advertise="a:1").open()


async def test_only_one_of_racing_standbys_wins(pg_url: str) -> None:
    managers = [Leadership(pg_url, advertise=f"m{i}:1", lease=LEASE) for i in range(5)]
    await asyncio.gather(*(m.open() for m in managers))
    try:
        won = await asyncio.gather(*(m.try_acquire() for m in managers))
        assert won.count(True) == 1
        leader = managers[won.index(True)]
        assert leader.term == 1 and leader.leading()
        assert all(not m.leading() for m in managers if m is not leader)
        lease = await managers[0].observe()
        assert (lease.term, lease.holder, lease.free) == (1, leader.advertise, False)
        assert all(m.leader == leader.advertise for m in managers)
    finally:
        for m in managers:
            await m.close()


async def test_a_lapsed_lease_is_taken_with_a_higher_term(
    pair: tuple[Leadership, Leadership],
) -> None:
    a, b = pair
    assert await a.try_acquire()
    assert not await b.try_acquire()
    old = a.term
    # a stops renewing (as if paused): b gets the lease once it lapses, not before.
    a.step_down()
    started = time.monotonic()
    term = await b.campaign()
    assert time.monotonic() - started >= LEASE * 0.5
    assert term == old + 1
    assert not a.leading()
    with psycopg.Connection.connect(a.url, autocommit=True) as conn:
        assert not a.renew(conn, old)


async def test_renewals_keep_a_live_leader(pair: tuple[Leadership, Leadership]) -> None:
    a, b = pair
    assert await a.try_acquire()
    holding = asyncio.create_task(a.hold())
    try:
        for _ in range(int(3 * LEASE / 0.1)):
            assert not await b.try_acquire()
            await asyncio.sleep(0.1)
        assert a.leading()
    finally:
        holding.cancel()


async def test_a_dead_leaders_session_frees_the_lease_at_once(pg_url: str) -> None:
    long = 60.0
    a = Leadership(pg_url, advertise="a:1", lease=long)
    b = Leadership(pg_url, advertise="b:1", lease=long, poll=0.02)
    await a.open()
    await b.open()
    try:
        assert await a.try_acquire()
        assert not (await b.observe()).free
        await a.close()  # what the kernel does to a kill -9ed leader's sockets
        async with asyncio.timeout(5):
            await b.campaign()
        assert b.term == 2
    finally:
        await b.close()


async def test_release_hands_over_without_waiting(pair: tuple[Leadership, Leadership]) -> None:
    a, b = pair
    assert await a.try_acquire()
    await a.release()
    assert not a.leading()
    assert await b.try_acquire()


async def test_hold_returns_when_deposed(pair: tuple[Leadership, Leadership]) -> None:
    a, b = pair
    assert await a.try_acquire()
    # Depose a behind its back: a newer term, as if a's lease had lapsed and b took it.
    await b.conn.execute("UPDATE lease SET term = term + 1")
    async with asyncio.timeout(5 * LEASE):
        await a.hold()
    assert not a.leading() and a.term == 0


async def test_a_write_under_an_old_term_is_fenced(pair: tuple[Leadership, Leadership]) -> None:
    a, b = pair
    assert await a.try_acquire()
    old = a.term
    a.step_down()  # a is paused: it renews no more, but still holds term `old` in its writes
    async with await psycopg.AsyncConnection.connect(a.url) as conn:
        async with conn.transaction():
            await check_term(conn, old)
            await conn.execute("CREATE TABLE probe (term BIGINT)")
            await conn.execute("INSERT INTO probe VALUES (%s)", (old,))
        await b.conn.execute("UPDATE lease SET expires_at = '-infinity'")
        assert await b.try_acquire()
        with pytest.raises(Fenced):
            async with conn.transaction():
                await check_term(conn, old)
                await conn.execute("INSERT INTO probe VALUES (%s)", (old,))
        cursor = await conn.execute("SELECT count(*) FROM probe")
        assert await cursor.fetchone() == (1,)


async def test_a_takeover_waits_for_the_old_leaders_write_in_flight(
    pair: tuple[Leadership, Leadership],
) -> None:
    a, b = pair
    assert await a.try_acquire()
    old = a.term
    a.step_down()  # a is paused: it renews no more, but its write is in flight
    async with await psycopg.AsyncConnection.connect(a.url) as conn:
        await conn.execute("CREATE TABLE probe (term BIGINT)")
        await conn.commit()
        await b.conn.execute("UPDATE lease SET expires_at = '-infinity'")
        async with conn.transaction():
            await check_term(conn, old)
            taking = asyncio.create_task(b.try_acquire())

            async def blocked_on_a_lock() -> bool:
                cursor = await conn.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                )
                row = await cursor.fetchone()
                return bool(row and row[0])

            # The term bump waits for the share lock this transaction holds.
            await eventually(blocked_on_a_lock, what="the takeover waiting on the lock")
            assert not taking.done()
            await conn.execute("INSERT INTO probe VALUES (%s)", (old,))
        assert await taking
    assert b.term == old + 1
