"""Fencing on the worker: the node's lease, and the beacon its launchers watch.

At most one attempt of a task may run. The manager replaces a node's attempts
only once the node has been silent for the TTL, counted from the arrival of
its last message. Two things on the node make sure the old copies are gone
by then, whatever failed:

- **The lease** (``Lease``). Every heartbeat is answered by a
  ``LeaseRenewal`` naming its seq; the lease holds from the moment that
  heartbeat was *sent*, which is before the manager saw it, so the worker's
  count always runs ahead of the manager's. When the lease is older than an
  attempt's ``stop_after`` (its disconnect policy, by default two thirds of
  the TTL) the supervisor stops the attempt, with a kill deadline inside the
  TTL. This covers a partition and a dead manager alike: the worker cannot
  tell them apart. One exception is safe: a dial refused outright means no
  manager process listens, and a manager that starts later gives every
  node a fresh TTL plus one, so a refusal renews the lease from the moment
  of the dial. The lease is saved to disk on each renewal, so a worker that
  restarts counts on from its predecessor's last renewal, not from zero.

- **The beacon** (``Beacon``): a FIFO the worker holds open for writing and a
  pid file. Each process attempt's launcher blocks reading the FIFO, which
  returns end-of-file the moment the worker dies (the kernel closes its
  descriptor; no polling). The launcher then waits ``orphan_grace`` and
  stops its task unless a worker is alive again by then (the pid file), in
  which case that worker adopts it, as before fencing. Docker containers
  have no launcher; ``worker.runtimes.reaping`` runs one small process per
  node that watches the same beacon and stops the node's containers.

Times: with TTL T and heartbeat interval H the last heartbeat the manager
saw left at most H (plus a network delay) before the worker died, so a
launcher has T - H to stop its task: half of it is the grace, a quarter the
kill wait after SIGTERM, the rest a margin.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from corral.model import Disconnect, TaskSpec, lease_stop_after

log = logging.getLogger(__name__)

# The share of the TTL kept free between a forced stop's kill and the manager's replacement.
MARGIN_SHARE = 1 / 12
# The most seqs remembered while waiting for their renewal.
KEEP_SENT = 64
DEFAULT_POLICY = Disconnect(stop_after=lease_stop_after(3.0), replace=True)


@dataclass(frozen=True)
class Terms:
    """What the manager's Welcome says about leases."""

    ttl: float = 3.0
    heartbeat_interval: float = 1.0
    default: Disconnect = DEFAULT_POLICY

    @property
    def margin(self) -> float:
        return self.ttl * MARGIN_SHARE

    def stop_after(self, spec: TaskSpec) -> float | None:
        """Seconds an attempt may run without a lease; None = for as long as it likes."""
        return spec.disconnect.resolved(self.default).stop_after

    def kill_window(self, stop_after: float) -> float:
        """Grace between SIGTERM and SIGKILL for an attempt stopped by its lapsed lease."""
        return max(0.0, self.ttl - stop_after - self.margin)

    @property
    def orphan_grace(self) -> float:
        """How long a launcher waits for its worker to come back before stopping its task."""
        return max(0.0, self.ttl - self.heartbeat_interval) / 2

    @property
    def orphan_kill_wait(self) -> float:
        return max(0.0, self.ttl - self.heartbeat_interval) / 4


class Lease:
    """When the node last proved itself alive to the manager, counted as the worker may."""

    def __init__(self, path: Path | None = None, *, clock: Callable[[], float] = time.monotonic):
        self.path = path
        self.clock = clock
        self.terms = Terms()
        # clock() of the last renewal; None while the node never held one (nothing to fence).
        self.renewed_at: float | None = None
        self._sent: dict[int, float] = {}
        if path is not None:
            self._load(path)

    def age(self) -> float | None:
        return None if self.renewed_at is None else self.clock() - self.renewed_at

    def granted(self, hello_sent_at: float, terms: Terms) -> None:
        """A Welcome: the lease holds from the Hello it answers."""
        self.terms = terms
        self._sent.clear()
        self._renew(hello_sent_at)

    def sent(self, seq: int) -> None:
        """A heartbeat is about to be written."""
        self._sent[seq] = self.clock()
        while len(self._sent) > KEEP_SENT:
            del self._sent[next(iter(self._sent))]

    def renew(self, seq: int) -> None:
        """The manager answered heartbeat ``seq``."""
        at = self._sent.get(seq)
        if at is None:
            return  # answers a heartbeat of an earlier session, or one forgotten
        for older in [s for s in self._sent if s <= seq]:
            del self._sent[older]
        self._renew(at)

    def refused(self, dialed_at: float) -> None:
        """No manager listened when this dial started: none can have counted our TTL down."""
        if self.renewed_at is not None:
            self._renew(dialed_at)

    def _renew(self, at: float) -> None:
        if self.renewed_at is None or at > self.renewed_at:
            self.renewed_at = at
            self._save()

    # -- kept on disk for the next worker on this data dir -------------------------

    def _save(self) -> None:
        if self.path is None or self.renewed_at is None:
            return
        record = {
            "renewed_at": time.time() - (self.clock() - self.renewed_at),
            "ttl": self.terms.ttl,
            "heartbeat_interval": self.terms.heartbeat_interval,
            "stop_after": self.terms.default.stop_after,
            "replace": self.terms.default.replace,
        }
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps(record))
            tmp.replace(self.path)
        except OSError as err:  # a full disk must not take the node down
            log.warning("cannot save the lease to %s: %s", self.path, err)

    def _load(self, path: Path) -> None:
        try:
            record = json.loads(path.read_text())
            renewed_wall = float(record["renewed_at"])
            stop_after = record.get("stop_after")
            self.terms = Terms(
                ttl=float(record["ttl"]),
                heartbeat_interval=float(record["heartbeat_interval"]),
                default=Disconnect(
                    stop_after=None if stop_after is None else float(stop_after),
                    replace=bool(record.get("replace", True)),
                ),
            )
        except FileNotFoundError:
            return
        except (OSError, ValueError, KeyError, TypeError) as err:
            log.warning("unreadable lease %s (%s): counting it as lapsed", path, err)
            self.renewed_at = float("-inf")
            return
        self.renewed_at = self.clock() - max(0.0, time.time() - renewed_wall)


class Beacon:
    """The FIFO and pid file by which launchers (and the Docker reaper) see this worker."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.fifo = directory / "alive"
        self.pidfile = directory / "pid"
        self._fd: int | None = None

    def hold(self) -> None:
        """Open the FIFO for writing (before the pid file: a live pid means a writer)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            if not stat.S_ISFIFO(self.fifo.stat().st_mode):
                self.fifo.unlink()
        if not self.fifo.exists():
            os.mkfifo(self.fifo, 0o600)
        # O_RDWR never blocks on a FIFO; this process is then one of its writers.
        self._fd = os.open(self.fifo, os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
        tmp = self.pidfile.with_suffix(".tmp")
        tmp.write_text(f"{os.getpid()}\n")
        tmp.replace(self.pidfile)

    def release(self) -> None:
        """As if the worker died: launchers start counting their grace."""
        if self._fd is None:
            return
        self.pidfile.unlink(missing_ok=True)
        os.close(self._fd)
        self._fd = None


async def fence(supervisor_fence: Callable[[Lease], None], lease: Lease) -> None:
    """Check the lease a dozen times per TTL for the whole life of the worker."""
    while True:
        await asyncio.sleep(max(0.02, lease.terms.ttl * MARGIN_SHARE / 2))
        try:
            supervisor_fence(lease)
        except Exception:
            log.exception("checking the lease failed")


async def refused(managers: str, *, timeout: float = 0.5) -> bool:
    """True when every manager address refuses a TCP connection outright.

    Only a refusal counts (nothing listens there); a timeout or an unreachable
    network may be a partition, behind which a live manager counts our TTL.
    """
    addresses = [a.strip() for a in managers.split(",") if a.strip()]
    if not addresses:
        return False
    for address in addresses:
        host, _, port = address.removeprefix("dns:///").rpartition(":")
        try:
            async with asyncio.timeout(timeout):
                _, writer = await asyncio.open_connection(host.strip("[]"), int(port))
        except ConnectionRefusedError:
            continue
        except (OSError, ValueError, TimeoutError):
            return False
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        return False
    return True
