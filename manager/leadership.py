"""One leader among several managers, elected and fenced through PostgreSQL.

Corral builds no consensus of its own: the database every manager points at
is the arbiter. Its ``lease`` table has one row: the leader's advertised
address, its backend pid, a **term** that only ever grows, and when the lease
lapses (on the database's clock, so managers with skewed clocks agree).

- A standby polls the row every ``poll`` seconds. When the lease has lapsed,
  or the leader's database session is gone (a ``kill -9``ed leader's
  connections close at once, so a standby need not wait out the lease), it
  takes the row ``FOR UPDATE``, bumps the term and becomes leader. Two
  standbys racing serialise on the row lock; the second sees a live lease.
- The leader renews every quarter of the lease, so three renewals may fail
  before it lapses, from a thread with its own connection, so a busy event
  loop does not cost a live leader its lease. It believes itself leader
  only until ``valid_until``: the moment it *sent* its last successful
  renewal plus the lease, minus a margin, on its own monotonic clock. That
  moment comes before the database lets anyone else take the lease, so two
  managers never both think they lead, even when one was paused (SIGSTOP)
  and wakes up late.
- Fencing does not rely on that clock: every write transaction of the leader
  first reads the lease row ``FOR KEY SHARE`` and aborts with ``Fenced``
  unless the term is still its own (``check_term``). A standby's term bump
  takes the row ``FOR UPDATE`` first, so it waits for the leader's writes in
  flight, and once the new term is committed no write of the old leader can
  commit. The sessions set ``idle_in_transaction_session_timeout`` to the
  lease, so a paused leader holding that lock mid-transaction cannot block a
  takeover for longer than one lease.
- That timeout never ends a session paused in the middle of a ``COPY FROM
  STDIN`` (the store's group commits): the server waits for the rest of the
  data, neither idle nor running a statement. So a standby that finds the
  lease lapsed first ends the old term's writer session if it is still in a
  transaction (``pg_terminate_backend``; the writer names itself by its term,
  ``writer_name``); its transaction rolls back and nothing of it lands.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg

from corral.errors import Unavailable
from manager.stores import postgres_schema

log = logging.getLogger(__name__)

# A leader trusts its lease for this share of the lease duration after the
# renewal it sent, leaving room for clock-rate differences and scheduling.
TRUST = 0.8
RENEWALS_PER_LEASE = 4


class Fenced(Unavailable):
    """A newer term began: this manager is no longer the leader and must not write.

    Clients see UNAVAILABLE, which they retry (on the new leader).
    """


@dataclass(frozen=True)
class Lease:
    """The lease row as a standby sees it."""

    term: int
    holder: str
    # The lease lapsed or its holder's database session is gone: it may be taken.
    free: bool


def session_options(lease: float) -> str:
    """Server settings of every Corral session, so a paused leader cannot block a takeover."""
    millis = max(int(lease * 1000), 100)
    return f"-c idle_in_transaction_session_timeout={millis} -c lock_timeout={millis}"


# KEY SHARE conflicts with a takeover's FOR UPDATE but not with a renewal's UPDATE
# (which changes no key column): a write transaction that lasts (its event loop was
# busy) blocks a term change, never the leader's own renewals.
_FENCE = "SELECT term FROM lease WHERE id = 1 FOR KEY SHARE"


async def check_term(conn: psycopg.AsyncConnection[Any], term: int) -> None:
    """Fence a write transaction (call it first inside the transaction)."""
    cursor = await conn.execute(_FENCE)
    _still_at(term, await cursor.fetchone())


def begin_fenced_sync(conn: psycopg.Connection[Any], term: int) -> None:
    """``check_term`` for the stores that use a synchronous connection: open a transaction
    on ``conn`` (in autocommit mode) and fence it, in one round trip.

    The group commits' writer pays a round trip per statement, each one a wait for the
    GIL on a busy manager; ``BEGIN`` and the fence go as one simple query. The caller
    commits or rolls back (also when this raises ``Fenced``).
    """
    cursor = conn.execute("BEGIN; " + _FENCE)
    cursor.nextset()
    _still_at(term, cursor.fetchone())


def _still_at(term: int, row: Any) -> None:
    """Raise ``Fenced`` unless the fence read (``row``) found the lease at ``term``."""
    current = int(row[0]) if row else 0
    if current != term:
        raise Fenced(f"term {term} ended: the lease is at term {current}")


# The lease may be taken: it lapsed, or its holder's database session is gone.
_LAPSED = """(lease.expires_at < clock_timestamp() OR lease.holder_pid = 0
    OR NOT EXISTS (SELECT 1 FROM pg_stat_activity h WHERE h.pid = lease.holder_pid))"""
_OBSERVE = f"SELECT term, holder, {_LAPSED} FROM lease WHERE id = 1"


_WRITER = "corral-writer term "


def writer_name(term: int) -> str:
    """The ``application_name`` of the store writer's session under ``term``."""
    return f"{_WRITER}{term}"


# Ends the lapsed term's writer session, if it is in a transaction, and only while the
# lease is still lapsed (a leader that renewed in time keeps it). Needs the same role
# or pg_signal_backend; without, the takeover waits on the lock as before.
_UNBLOCK = f"""SELECT count(pg_terminate_backend(a.pid)) FROM pg_stat_activity a, lease
    WHERE lease.id = 1 AND a.datname = current_database() AND a.pid <> pg_backend_pid()
    AND a.application_name = %s || lease.term
    AND a.xact_start IS NOT NULL AND {_LAPSED}"""


_RENEW = """UPDATE lease SET expires_at = clock_timestamp() + make_interval(secs => %s),
    holder_pid = pg_backend_pid() WHERE id = 1 AND term = %s RETURNING term"""


class _Renewer(threading.Thread):
    """Renews the lease every quarter of it until deposed or stopped."""

    def __init__(self, leadership: Leadership, term: int, lost: Callable[[], object]) -> None:
        super().__init__(name="corral-lease", daemon=True)
        self.leadership = leadership
        self.term = term
        self.lost = lost
        self.stopping = threading.Event()

    def run(self) -> None:
        ours = self.leadership
        period = ours.lease / RENEWALS_PER_LEASE
        conn: psycopg.Connection[Any] | None = None
        try:
            while not self.stopping.wait(period):
                try:
                    if conn is None or conn.closed:
                        conn = psycopg.Connection.connect(
                            ours.url,
                            autocommit=True,
                            options=session_options(ours.lease),
                            connect_timeout=max(int(ours.lease), 1),
                        )
                    started = time.monotonic()
                    if not ours.renew(conn, self.term):
                        log.warning(
                            "deposed: a newer term took the lease", extra={"term": self.term}
                        )
                        break
                    took = time.monotonic() - started
                    if took > period:
                        log.warning("lease renewal took %.2fs", took)
                except psycopg.Error as err:
                    log.warning("lease renewal failed: %s", err)
                    if conn is not None:
                        conn.close()
                    if not ours.leading():
                        break
        finally:
            if conn is not None:
                conn.close()
            if not self.stopping.is_set():
                with contextlib.suppress(RuntimeError):  # the event loop is gone: nobody to tell
                    self.lost()


class Leadership:
    """This manager's side of the election; see the module docstring."""

    def __init__(self, url: str, *, advertise: str, lease: float = 4.0, poll: float = 0.1) -> None:
        if lease <= 0:
            raise ValueError("--lease-duration: must be a positive number of seconds")
        self.url = postgres_schema.check_url(url)
        self.advertise = advertise
        self.lease = lease
        self.poll = poll
        self.term = 0
        # Where the leader is, as last seen (standbys hand this to clients).
        self.leader = ""
        self._valid_until = 0.0
        self._conn: psycopg.AsyncConnection[Any] | None = None
        self._renewer: _Renewer | None = None
        self._lost = asyncio.Event()

    async def open(self) -> None:
        """Connect and migrate the schema (every manager may; one does the work)."""
        conn = await psycopg.AsyncConnection.connect(
            self.url, autocommit=True, options=session_options(self.lease)
        )
        try:
            await postgres_schema.migrate(conn)
        except BaseException:
            await conn.close()
            raise
        self._conn = conn

    @property
    def conn(self) -> psycopg.AsyncConnection[Any]:
        assert self._conn is not None, "leadership is not open"
        return self._conn

    def leading(self) -> bool:
        """True while this manager holds a lease it may trust (no I/O; call freely)."""
        return self.term > 0 and time.monotonic() < self._valid_until

    async def observe(self) -> Lease:
        cursor = await self.conn.execute(_OBSERVE)
        row = await cursor.fetchone()
        assert row is not None, "the lease row is missing"
        lease = Lease(int(row[0]), str(row[1]), bool(row[2]))
        self.leader = "" if lease.free else lease.holder
        return lease

    async def try_acquire(self) -> bool:
        """Take the lease if it is free; True when this manager now leads (``term`` is set)."""
        sent = time.monotonic()
        async with self.conn.transaction():
            cursor = await self.conn.execute(_OBSERVE + " FOR UPDATE")
            row = await cursor.fetchone()
            assert row is not None, "the lease row is missing"
            if not row[2]:
                self.leader = str(row[1])
                return False
            cursor = await self.conn.execute(
                """UPDATE lease SET term = term + 1, holder = %s, holder_pid = pg_backend_pid(),
                   expires_at = clock_timestamp() + make_interval(secs => %s),
                   acquired_at = clock_timestamp() WHERE id = 1 RETURNING term""",
                (self.advertise, self.lease),
            )
            won = await cursor.fetchone()
        assert won is not None
        self.term = int(won[0])
        self.leader = self.advertise
        self._valid_until = sent + self.lease * TRUST
        # Renewing starts now, not once the state is loaded: loading may take longer
        # than the lease allows before the first renewal.
        loop = asyncio.get_running_loop()
        self._lost = lost = asyncio.Event()
        self._renewer = _Renewer(self, self.term, lambda: loop.call_soon_threadsafe(lost.set))
        self._renewer.start()
        log.info("leading", extra={"term": self.term, "advertise": self.advertise})
        return True

    async def campaign(self) -> int:
        """Wait until this manager leads; returns its term."""
        while True:
            try:
                if (await self.observe()).free:
                    await self._unblock()
                    if await self.try_acquire():
                        return self.term
            except psycopg.OperationalError as err:
                # A lock wait that hit lock_timeout, or the database restarting: try again.
                log.warning("election round failed: %s", err)
                await self._reconnect()
            await asyncio.sleep(self.poll)

    async def _unblock(self) -> None:
        """End the lapsed term's writer session if a transaction of it is still open."""
        try:
            cursor = await self.conn.execute(_UNBLOCK, (_WRITER,))
            row = await cursor.fetchone()
        except psycopg.errors.InsufficientPrivilege as err:
            log.warning("cannot end the previous leader's writer session: %s", err)
            return
        if row and row[0]:
            log.warning("ended the previous leader's writer session, still in a transaction")

    def renew(self, conn: psycopg.Connection[Any], term: int) -> bool:
        """Extend the lease of ``term`` on ``conn`` (the renewing thread's); False when a
        newer term took it."""
        sent = time.monotonic()
        row = conn.execute(_RENEW, (self.lease, term)).fetchone()
        if row is None:
            return False
        if term == self.term:
            self._valid_until = sent + self.lease * TRUST
        return True

    async def hold(self) -> None:
        """Return once the lease is lost (a newer term, or no renewal in time).

        Renewals run on a thread of their own with their own connection (started
        on winning): a leader whose event loop is busy for a while (a placement
        pass over many tasks) is alive and keeps its lease; fencing, not the
        clock, keeps it safe.
        """
        lost = self._lost
        try:
            while self.leading() and not lost.is_set():
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.lease / RENEWALS_PER_LEASE):
                        await lost.wait()
            if not lost.is_set():
                log.warning("lease lapsed unrenewed", extra={"term": self.term})
        finally:
            self.step_down()

    def step_down(self) -> None:
        self._valid_until = 0.0
        self.term = 0
        if self._renewer is not None:
            # It stops within one period; a renewal it still sends is for the old term.
            self._renewer.stopping.set()
            self._renewer = None

    async def release(self) -> None:
        """Give the lease up at once (a graceful stop), so a standby need not wait it out."""
        term = self.term
        self.step_down()
        if term:
            await self.conn.execute(
                "UPDATE lease SET expires_at = '-infinity' WHERE id = 1 AND term = %s", (term,)
            )

    async def _reconnect(self) -> None:
        if self._conn is not None and not self._conn.closed:
            return
        try:
            await self.open()
        except psycopg.Error as err:
            log.warning("cannot reach the database: %s", err)

    async def close(self) -> None:
        self.step_down()
        if self._conn is not None:
            await self._conn.close()
            self._conn = None
