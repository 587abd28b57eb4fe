"""The Docker reaper: stops a dead worker's containers before the manager replaces them.

A process attempt has a launcher that notices its worker's death (see
``worker.fencing``); a container has none, and the engine keeps it running
whatever happens to the worker. So a worker that runs containers starts one
reaper per data dir: ``python -m worker.runtimes.docker.reaping``, in its own session
so that it outlives the worker. It blocks reading the worker's beacon FIFO,
which ends the moment no worker holds it; then it waits the orphan grace
(from the lease the worker saved), and unless a worker is alive again (the
pid file), stops every container labelled with that worker's data dir: the
engine sends SIGTERM, then SIGKILL after the kill wait. Then it exits; the
next worker starts a new reaper.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from worker.fencing import Beacon, Lease
from worker.runtimes.containerspecs import LABEL_WORKER

log = logging.getLogger(__name__)


def ensure(beacon: Path, owner: str, docker_host: str) -> None:
    """Start the reaper for this data dir unless one is already watching."""
    pidfile = beacon / "reaper.pid"
    with contextlib.suppress(OSError, ValueError):
        if _alive(int(pidfile.read_text().split()[0])):
            return
    argv = [sys.executable, "-m", "worker.runtimes.docker.reaping", str(beacon), owner]
    env = {**os.environ, "DOCKER_HOST": docker_host} if docker_host else dict(os.environ)
    with (beacon / "reaper.log").open("ab") as out:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
            env=env,
            start_new_session=True,
            close_fds=True,
        )
    pidfile.write_text(f"{proc.pid}\n")
    # It is not waited for: by design it outlives this worker. Marked reaped so
    # that Popen.__del__ does not warn about a live child.
    proc.returncode = 0


def watch(beacon: Beacon) -> None:
    """Return once the worker is gone and no worker came back within the grace."""
    while True:
        # Blocks until a worker holds the FIFO, then until none does.
        fd = os.open(beacon.fifo, os.O_RDONLY)
        try:
            while os.read(fd, 512):
                pass
        finally:
            os.close(fd)
        terms = Lease(beacon.directory / "lease.json").terms
        log.info("worker gone; waiting %.2fs for it to come back", terms.orphan_grace)
        time.sleep(terms.orphan_grace)
        try:
            if _alive(int(beacon.pidfile.read_text().split()[0])):
                log.info("a worker is back: it adopts the containers")
                continue
        except (OSError, ValueError):
            pass
        return


def reap(client: Any, owner: str, kill_wait: float) -> int:
    """Stop every running container of the worker whose data dir is ``owner``.

    All at once (one thread per container): the engine answers slowly under
    load, and the whole stop must fit in the TTL.
    """
    label = {"label": f"{LABEL_WORKER}={owner}"}
    found = client.containers.list(filters=label)
    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(lambda c: _kill(c, "SIGTERM"), found))
        time.sleep(kill_wait)
        left = client.containers.list(filters=label)
        list(pool.map(lambda c: _kill(c, "SIGKILL"), left))
    return len(found)


def _kill(container: Any, signal: str) -> None:
    try:
        container.kill(signal=signal)
    except Exception as err:  # already gone, or the engine refused: the next one matters
        log.info("killing %s with %s: %s", container.short_id, signal, err)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m worker.runtimes.docker.reaping")
    parser.add_argument("beacon", type=Path)
    parser.add_argument("owner")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s reaper: %(message)s")
    beacon = Beacon(args.beacon)
    # The only other place that talks to the engine; connected before it is needed.
    import docker

    client = docker.from_env()
    try:
        watch(beacon)
        terms = Lease(beacon.directory / "lease.json").terms
        stopped = reap(client, args.owner, terms.orphan_kill_wait)
    finally:
        client.close()
    log.info("worker gone past its grace: stopped %d container(s) of %s", stopped, args.owner)


if __name__ == "__main__":
    main()
