"""Per-attempt log files: tail, follow, and the size bound."""

from __future__ import annotations

import asyncio
from pathlib import Path

from waiting import eventually

from worker.logfiles import LogStore, enforce_limit, read_log, tail_offset


async def collect(path: Path, **kw: object) -> bytes:
    return b"".join([chunk async for chunk in read_log(path, **kw)])  # type: ignore[arg-type]


def test_tail_offset_counts_lines_from_the_end(tmp_path: Path) -> None:
    path = tmp_path / "a.log"
    path.write_bytes(b"one\ntwo\nthree\n")
    assert tail_offset(path, 0) == 0
    assert tail_offset(path, 1) == len(b"one\ntwo\n")
    assert tail_offset(path, 2) == len(b"one\n")
    assert tail_offset(path, 10) == 0
    path.write_bytes(b"one\ntwo\npartial")  # an unfinished last line counts as a line
    assert tail_offset(path, 1) == len(b"one\ntwo\n")
    path.write_bytes(b"")
    assert tail_offset(path, 3) == 0


def test_tail_offset_across_chunks(tmp_path: Path) -> None:
    path = tmp_path / "big.log"
    lines = [f"line {i:06d}\n".encode() for i in range(20_000)]  # ~240 kB, several chunks
    path.write_bytes(b"".join(lines))
    offset = tail_offset(path, 5000)
    assert path.read_bytes()[offset:] == b"".join(lines[-5000:])


async def test_read_log_tail_and_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "a.log"
    path.write_bytes(b"a\nb\nc\n")
    assert await collect(path) == b"a\nb\nc\n"
    assert await collect(path, tail=2) == b"b\nc\n"
    assert await collect(tmp_path / "missing.log") == b""


async def test_follow_streams_until_done(tmp_path: Path) -> None:
    store = LogStore(tmp_path, 1 << 20)
    path = store.create("t", 1)
    finished = False
    received: list[bytes] = []

    async def follow() -> None:
        async for chunk in read_log(path, follow=True, done=lambda: finished):
            received.append(chunk)

    following = asyncio.ensure_future(follow())
    for i in range(3):
        store.append(path, f"line{i}\n".encode())
        expected = b"".join(f"line{j}\n".encode() for j in range(i + 1))
        await eventually(lambda expected=expected: b"".join(received) == expected)
    assert not following.done()
    store.append(path, b"last\n")
    finished = True
    await asyncio.wait_for(following, 5)
    assert b"".join(received) == b"line0\nline1\nline2\nlast\n"


def test_enforce_limit_keeps_the_newest_whole_lines(tmp_path: Path) -> None:
    path = tmp_path / "a.log"
    path.write_bytes(b"".join(f"{i:09d}\n".encode() for i in range(100)))  # 1000 bytes
    enforce_limit(path, 2000)
    assert path.stat().st_size == 1000  # under the bound: untouched
    enforce_limit(path, 400)
    marker, _, kept = path.read_bytes().partition(b"\n")
    assert marker == f"[corral: {1000 - len(kept)} bytes of earlier output cut]".encode()
    assert len(kept) <= 200 and kept.endswith(b"000000099\n")
    assert kept.startswith(b"0000000") and kept.count(b"\n") == len(kept) // 10


def test_latest_generation(tmp_path: Path) -> None:
    store = LogStore(tmp_path, 1024)
    assert store.latest_generation("t") == 0
    store.create("t", 2)
    store.create("t", 10)
    assert store.latest_generation("t") == 10
