"""Per-attempt output kept on the worker's disk, bounded in size.

Runtimes write (or copy) each attempt's output to ``<root>/<task>/<gen>.log``.
A process writes to its file directly, not through a pipe, so that it
survives a worker restart; the size bound is therefore enforced from outside
(``enforce_limit``) by keeping the newest half of the bytes. Readers tail and
follow by polling the file, which works the same for every runtime.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Callable, Collection
from pathlib import Path

CHUNK = 64 * 1024
# A log filesystem with less free space than this counts as full.
FULL_BELOW = 256 * 1024
# Smaller logs are never cut for a full disk: there is nothing to gain.
MIN_KEPT = 4096
FOLLOW_POLL = 0.05


class LogStore:
    def __init__(self, root: Path, max_bytes: int) -> None:
        self.root = root
        self.max_bytes = max_bytes

    def path(self, task_id: str, generation: int) -> Path:
        return self.root / task_id / f"{generation}.log"

    def latest_generation(self, task_id: str) -> int:
        gens = [int(p.stem) for p in (self.root / task_id).glob("*.log") if p.stem.isdigit()]
        return max(gens, default=0)

    def create(self, task_id: str, generation: int) -> Path:
        path = self.path(task_id, generation)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()
        return path

    def append(self, path: Path, data: bytes) -> None:
        with path.open("ab") as f:
            f.write(data)
        self.enforce_limit(path)

    def enforce_limit(self, path: Path) -> None:
        enforce_limit(path, self.max_bytes)


def enforce_limit(path: Path, max_bytes: int) -> None:
    """Keep the newest max_bytes/2 when the file grew past max_bytes, or a quarter of
    it when the disk under it is (nearly) full; a marker line says what was cut.

    A full disk must not take the worker or its tasks down: the tasks' own
    writes fail (their business), and cutting their logs makes room again.
    Truncating in place keeps the writer's O_APPEND descriptor valid: its next
    write lands at the new end of the file. The marker and the kept tail are
    written over the file's first bytes, so the cut needs no free space.
    """
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return
    full = disk_full(path)
    if size <= max_bytes and not (full and size > MIN_KEPT):
        return
    keep = min(max_bytes // 2, size // 4) if full else max_bytes // 2
    with path.open("r+b") as f:
        f.seek(size - keep)
        tail = f.read(keep)
        # Start at a line boundary so a reader never sees half a line.
        cut = tail.find(b"\n")
        if 0 <= cut < len(tail) - 1:
            tail = tail[cut + 1 :]
        why = ", the disk was full" if full else ""
        marker = f"[corral: {size - len(tail)} bytes of earlier output cut{why}]\n".encode()
        kept = marker + tail[len(marker) :] if len(marker) + len(tail) > size else marker + tail
        f.seek(0)
        f.write(kept)
        f.truncate(len(kept))


def prune(root: Path, *, older_than: float, keep: Collection[str], now: float) -> int:
    """Delete the logs of tasks not in ``keep`` whose newest log is older than
    ``older_than`` seconds (the manager forgot them: see manager.retention)."""
    removed = 0
    try:
        tasks = list(root.iterdir())
    except FileNotFoundError:
        return 0
    for task_dir in tasks:
        if task_dir.name in keep or not task_dir.is_dir():
            continue
        logs = list(task_dir.glob("*.log"))
        try:
            newest = max((p.stat().st_mtime for p in logs), default=0.0)
        except FileNotFoundError:
            continue
        if now - newest < older_than:
            continue
        for path in logs:
            path.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            task_dir.rmdir()
        removed += 1
    return removed


def disk_full(path: Path) -> bool:
    """Less than FULL_BELOW bytes (or 2%) left for unprivileged writers under ``path``."""
    try:
        st = os.statvfs(path)
    except OSError:
        return False
    free = st.f_bavail * st.f_frsize
    return free < FULL_BELOW or free < st.f_blocks * st.f_frsize * 0.02


def tail_offset(path: Path, lines: int) -> int:
    """Byte offset where the last ``lines`` lines start (0 = whole file)."""
    if lines <= 0:
        return 0
    size = path.stat().st_size
    pos, found = size, 0
    with path.open("rb") as f:
        # A trailing newline ends the last line; it does not start a new one.
        if size:
            f.seek(size - 1)
            if f.read(1) == b"\n":
                pos -= 1
        while pos > 0:
            step = min(CHUNK, pos)
            pos -= step
            f.seek(pos)
            block = f.read(step)
            for i in range(len(block) - 1, -1, -1):
                if block[i] == 0x0A:
                    found += 1
                    if found == lines:
                        return pos + i + 1
    return 0


async def read_log(
    path: Path,
    *,
    tail: int = 0,
    follow: bool = False,
    done: Callable[[], bool] = lambda: True,
) -> AsyncIterator[bytes]:
    """Yield the file's bytes from the tail offset; with follow, keep going until done()."""
    if not await asyncio.to_thread(path.exists):
        return
    offset = await asyncio.to_thread(tail_offset, path, tail)
    while True:
        size = await asyncio.to_thread(_size, path)
        if size < offset:  # truncated by enforce_limit: restart from its beginning
            offset = 0
        if size > offset:
            data = await asyncio.to_thread(_read, path, offset, size - offset)
            offset += len(data)
            if data:
                yield data
                continue
        if not follow or done():
            # One last read: output written between the size check and done().
            final = await asyncio.to_thread(_read, path, offset, CHUNK * 16)
            if final:
                yield final
            return
        await asyncio.sleep(FOLLOW_POLL)


def _size(path: Path) -> int:
    try:
        return os.stat(path).st_size
    except FileNotFoundError:
        return 0


def _read(path: Path, offset: int, length: int) -> bytes:
    with path.open("rb") as f:
        f.seek(offset)
        return f.read(min(length, CHUNK * 16))
