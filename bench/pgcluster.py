"""A throwaway PostgreSQL cluster on a free loopback port, for tests and benchmarks.

Debian's ``postgresql`` package (``apt-get install -y postgresql``) puts
``initdb`` and ``pg_ctl`` in ``/usr/lib/postgresql/<major>/bin``, off PATH;
``binaries()`` finds them there or on PATH. A cluster lives in a temp dir
owned by the ``postgres`` user when this runs as root (PostgreSQL refuses to
run as root), listens only on 127.0.0.1, keeps its socket in its own dir, and
is removed on ``stop``. ``synchronous_commit=off`` makes a commit as durable
as the SQLite store's WAL with ``synchronous=NORMAL``: safe against a process
crash, not against the OS's, so the two backends are compared like for like.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

START_TIMEOUT = 60
INITDB_FLAGS = ("--auth=trust", "-U", "postgres", "-E", "UTF8", "--no-sync")


def binaries() -> Path | None:
    """The directory holding initdb and pg_ctl, or None when PostgreSQL is not installed."""
    found = shutil.which("initdb")
    if found and shutil.which("pg_ctl"):
        return Path(found).resolve().parent
    for candidate in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        path = Path(candidate)
        if (path / "initdb").exists() and (path / "pg_ctl").exists():
            return path
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Cluster:
    root: Path
    port: int
    bindir: Path

    @property
    def data(self) -> Path:
        return self.root / "data"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def psql(self, sql: str, database: str = "postgres") -> str:
        """Run one statement with psql (outside any test's own connections)."""
        psql = self.bindir / "psql"
        out = subprocess.run(
            [str(psql if psql.exists() else "psql"), "-XAtq", "-d", self.url(database), "-c", sql],
            check=True,
            capture_output=True,
            text=True,
            timeout=60,
        )
        return out.stdout.strip()

    def create_database(self, name: str) -> str:
        self.psql(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def drop_database(self, name: str) -> None:
        self.psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def stop(self) -> None:
        try:
            _as_owner(
                [str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop"]
            )
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


def _as_owner(argv: list[str]) -> None:
    """Run a PostgreSQL program as the postgres user when we are root."""
    if os.geteuid() == 0:
        argv = ["runuser", "-u", "postgres", "--", *argv]
    subprocess.run(argv, check=True, capture_output=True, text=True, timeout=START_TIMEOUT)


def start(*, settings: dict[str, str] | None = None) -> Cluster:
    """initdb and start a cluster; raises RuntimeError when PostgreSQL is missing."""
    bindir = binaries()
    if bindir is None:
        raise RuntimeError("PostgreSQL is not installed (apt-get install -y postgresql)")
    root = Path(tempfile.mkdtemp(prefix="corral-pg-"))
    root.chmod(0o755)
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    cluster = Cluster(root, _free_port(), bindir)
    options = {
        "listen_addresses": "127.0.0.1",
        "port": str(cluster.port),
        "unix_socket_directories": str(root),
        "synchronous_commit": "off",
        "max_connections": "200",
        "shared_buffers": "128MB",
        **(settings or {}),
    }
    try:
        data = str(cluster.data)
        _as_owner([str(bindir / "initdb"), "-D", data, *INITDB_FLAGS])
        flags = " ".join(f"-c {k}={v}" for k, v in options.items())
        log_file = str(root / "server.log")
        wait = ["-w", "-t", str(START_TIMEOUT)]
        _as_owner([str(bindir / "pg_ctl"), "-D", data, "-o", flags, "-l", log_file, *wait, "start"])
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as err:
        log = root / "server.log"
        detail = log.read_text() if log.exists() else getattr(err, "stderr", "")
        shutil.rmtree(root, ignore_errors=True)
        raise RuntimeError(f"cannot start PostgreSQL: {err}\n{detail}") from err
    return cluster


@contextlib.contextmanager
def running(settings: dict[str, str] | None = None) -> Iterator[Cluster]:
    cluster = start(settings=settings)
    try:
        yield cluster
    finally:
        cluster.stop()
