"""The process runtime against real processes on this machine."""

from __future__ import annotations

import asyncio
import os
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest
from waiting import eventually

from corral.model import Resources, TaskId, TaskSpec
from worker.logfiles import LogStore
from worker.runtimes.base import Assignment, AttemptRef, StartError
from worker.runtimes.process import ProcessRuntime


def runtime(tmp_path: Path, max_bytes: int = 1 << 20) -> ProcessRuntime:
    return ProcessRuntime(tmp_path / "process", LogStore(tmp_path / "logs", max_bytes))


def assign(task: str, *command: str, gen: int = 1, **kw: object) -> Assignment:
    spec = TaskSpec(name=task, command=tuple(command), **kw)  # type: ignore[arg-type]
    return Assignment(AttemptRef(TaskId(task), gen), spec, node_id="n1")  # type: ignore[arg-type]


async def output(rt: ProcessRuntime, ref: AttemptRef, **kw: object) -> bytes:
    return b"".join([chunk async for chunk in rt.logs(ref, **kw)])  # type: ignore[arg-type]


async def test_runs_to_completion_with_output_and_exit_code(tmp_path: Path) -> None:
    rt = runtime(tmp_path)
    ok = assign("ok", "sh", "-c", "echo hello; echo oops >&2")
    bad = assign("bad", "sh", "-c", "exit 3")
    await rt.start(ok)
    await rt.start(bad)
    done = await rt.wait(ok.ref)
    assert done.exit_code == 0 and done.ok
    failed = await rt.wait(bad.ref)
    assert failed.exit_code == 3 and not failed.ok
    assert failed.message == "exit code 3"
    assert await output(rt, ok.ref) == b"hello\noops\n"
    # Records are gone once the end was seen: nothing left to adopt.
    assert list((tmp_path / "process").glob("*.json")) == []
    await rt.close()


async def test_argv_is_not_parsed_by_a_shell(tmp_path: Path) -> None:
    rt = runtime(tmp_path)
    a = assign("argv", "echo", "$HOME; rm -rf /", "'quoted'")
    await rt.start(a)
    assert (await rt.wait(a.ref)).exit_code == 0
    assert await output(rt, a.ref) == b"$HOME; rm -rf / 'quoted'\n"
    await rt.close()


async def test_env_and_working_dir(tmp_path: Path) -> None:
    rt = runtime(tmp_path)
    work = tmp_path / "work"
    work.mkdir()
    a = assign(
        "env",
        "sh",
        "-c",
        "echo $GREETING; pwd; echo $CORRAL_TASK_ID",
        env={"GREETING": "hi there"},
        working_dir=str(work),
    )
    await rt.start(a)
    await rt.wait(a.ref)
    assert await output(rt, a.ref) == f"hi there\n{work}\nenv\n".encode()
    await rt.close()


async def test_start_errors_name_the_problem(tmp_path: Path) -> None:
    rt = runtime(tmp_path)
    with pytest.raises(StartError, match="executable not found: no-such-program"):
        await rt.start(assign("x", "no-such-program"))
    with pytest.raises(StartError, match="working directory not found"):
        await rt.start(assign("y", "true", working_dir=str(tmp_path / "nope")))
    await rt.close()


async def test_tail_and_follow(tmp_path: Path) -> None:
    rt = runtime(tmp_path)
    a = assign("tail", "sh", "-c", "for i in 1 2 3 4 5; do echo line$i; done; sleep 0.3; echo late")
    await rt.start(a)
    followed = await asyncio.wait_for(output(rt, a.ref, follow=True), 10)
    assert followed.endswith(b"line5\nlate\n")
    assert await output(rt, a.ref, tail=2) == b"line5\nlate\n"
    await rt.close()


async def test_stop_sends_term_then_kill_for_a_process_that_ignores_it(tmp_path: Path) -> None:
    rt = runtime(tmp_path)
    polite = assign("polite", "sleep", "60")
    stubborn = assign(
        "stubborn",
        sys.executable,
        "-c",
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        "print('ready', flush=True); time.sleep(60)",
    )
    await rt.start(polite)
    await rt.start(stubborn)
    await wait_for_output(rt, stubborn.ref, b"ready")
    started = time.monotonic()
    await rt.stop(polite.ref, grace=5)
    assert time.monotonic() - started < 2
    ended = await rt.wait(polite.ref)
    assert ended.exit_code == 143 and ended.message == "killed by SIGTERM"
    started = time.monotonic()
    await rt.stop(stubborn.ref, grace=0.5)
    assert 0.5 <= time.monotonic() - started < 5
    killed = await rt.wait(stubborn.ref)
    assert killed.exit_code == 137 and killed.message == "killed by SIGKILL"
    await rt.stop(stubborn.ref, grace=0.5)  # idempotent
    await rt.close()


async def test_memory_limit_is_applied(tmp_path: Path) -> None:
    rt = runtime(tmp_path)
    a = assign("mem", "sh", "-c", "ulimit -v", resources=Resources(memory_bytes=256 << 20))
    await rt.start(a)
    await rt.wait(a.ref)
    assert await output(rt, a.ref) == b"262144\n"
    await rt.close()


async def test_log_is_kept_within_its_bound(tmp_path: Path) -> None:
    rt = runtime(tmp_path, max_bytes=64 * 1024)
    # ~1 MB of numbered lines written in bursts while running.
    a = assign(
        "big", "sh", "-c", "i=0; while [ $i -lt 40 ]; do seq 1 5000; i=$((i+1)); sleep 0.05; done"
    )
    await rt.start(a)
    await rt.wait(a.ref)
    size = rt.logstore.path(TaskId("big"), 1).stat().st_size
    assert 0 < size <= 64 * 1024
    await rt.close()


async def test_a_restarted_worker_adopts_its_running_process(tmp_path: Path) -> None:
    first = runtime(tmp_path)
    a = assign("long", "sh", "-c", "echo started; read x < /dev/null; sleep 30; exit 7")
    finished = assign("short", "sh", "-c", "exit 5")
    await first.start(a)
    await first.start(finished)
    await wait_for_output(first, a.ref, b"started")
    pid = _record_pid(tmp_path, a.ref)
    # Let "short" end while nobody watches it.
    await eventually((tmp_path / "process" / f"{finished.ref.key}.status").exists)
    await first.close()  # the worker goes away; its processes do not

    second = runtime(tmp_path)
    adopted = {x.ref.key: x for x in await second.adopt()}
    assert set(adopted) == {a.ref.key, finished.ref.key}
    assert adopted[a.ref.key].exit is None
    assert adopted[finished.ref.key].exit is not None
    assert adopted[finished.ref.key].exit.exit_code == 5
    # No duplicate: exactly one process runs the attempt, the original one.
    assert psutil.pid_exists(pid)
    await second.start(a)  # a re-delivered assignment does not start it again
    assert _launchers(a.ref, tmp_path) == [pid]
    assert await second.adopt() == []  # adopting twice finds nothing new
    await second.stop(a.ref, grace=5)
    ended = await second.wait(a.ref)
    assert ended.exit_code == 143
    await second.close()


async def test_an_adopted_process_that_ends_reports_its_exit_code(tmp_path: Path) -> None:
    first = runtime(tmp_path)
    a = assign("later", "sh", "-c", "echo up; sleep 1.5; exit 7")
    await first.start(a)
    await wait_for_output(first, a.ref, b"up")
    await first.close()
    second = runtime(tmp_path)
    (adopted,) = await second.adopt()
    assert adopted.exit is None  # still running when adopted
    ended = await asyncio.wait_for(second.wait(a.ref), 10)
    assert ended.exit_code == 7 and ended.message == "exit code 7"
    assert await output(second, a.ref) == b"up\n"
    await second.close()


async def test_adoption_ignores_a_reused_pid(tmp_path: Path) -> None:
    rt = runtime(tmp_path)
    (tmp_path / "process").mkdir(parents=True)
    record = {
        "task_id": "ghost",
        "generation": 1,
        "pid": os.getpid(),
        "create_time": 1.0,
        "log": str(tmp_path / "x.log"),
    }
    import json

    (tmp_path / "process" / "ghost.1.json").write_text(json.dumps(record))
    (adopted,) = await rt.adopt()
    assert adopted.exit is not None and adopted.exit.exit_code is None
    assert "exit status unknown" in adopted.exit.message
    await rt.close()


async def wait_for_output(rt: ProcessRuntime, ref: AttemptRef, needle: bytes) -> None:
    async def seen() -> bool:
        return needle in await output(rt, ref)

    await eventually(seen, what=f"{needle!r} in the output")


def _record_pid(tmp_path: Path, ref: AttemptRef) -> int:
    import json

    return int(json.loads((tmp_path / "process" / f"{ref.key}.json").read_text())["pid"])


def _launchers(ref: AttemptRef, root: Path) -> list[int]:
    """Launchers of the attempt under this test's dir (other runs may use the same ids)."""
    out = []
    for p in psutil.process_iter(["cmdline"]):
        cmd = p.info["cmdline"] or []
        ours = cmd[:2] == ["/bin/sh", "-c"] and len(cmd) > 3 and cmd[3].startswith(str(root))
        if ours and Path(cmd[3]).name == f"{ref.key}.status":
            out.append(p.pid)
    return out


async def test_the_adoption_record_is_written_beside_the_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Reading a new process's create time waits in the kernel until its exec is done;
    # here it waits for the loop itself, which must stay free to report RUNNING.
    from worker.runtimes import processes

    release = threading.Event()
    waited: list[bool] = []
    real = psutil.Process

    def held(pid: int) -> psutil.Process:
        waited.append(release.wait(5))
        return real(pid)

    monkeypatch.setattr(processes.psutil, "Process", held)
    rt = runtime(tmp_path)
    a = assign("held", "sh", "-c", "read x < /dev/null; sleep 30")
    await rt.start(a)
    await asyncio.sleep(0)  # a turn of the loop with the record still being written
    release.set()
    await eventually((tmp_path / "process" / f"{a.ref.key}.json").exists)
    assert waited == [True]
    await rt.stop(a.ref, grace=5)
    await rt.wait(a.ref)
    assert list((tmp_path / "process").glob("*.json")) == []
    await rt.close()


async def test_an_attempt_that_ends_before_its_record_is_written_leaves_none(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from worker.runtimes import processes

    release = threading.Event()
    real = psutil.Process

    def held(pid: int) -> psutil.Process:
        found = real(pid)  # its create time read while it still runs
        release.wait(5)
        return found

    monkeypatch.setattr(processes.psutil, "Process", held)
    rt = runtime(tmp_path)
    a = assign("quick", "sh", "-c", "exit 4")
    await rt.start(a)
    ending = asyncio.ensure_future(rt.wait(a.ref))
    await eventually((tmp_path / "process" / f"{a.ref.key}.status").exists)
    release.set()
    assert (await ending).exit_code == 4
    assert list((tmp_path / "process").glob("*.json")) == []
    await rt.close()


async def test_an_attempt_that_ended_before_its_record_is_still_adopted(tmp_path: Path) -> None:
    """A command that ends before the record's writer thread runs (a busy worker) is
    recorded all the same; a restarted worker reads its exit from the status file."""
    first = runtime(tmp_path)
    done = assign("quick", "sh", "-c", "exit 5")
    gone = psutil.Process.create_time

    def ended(self: psutil.Process) -> float:
        raise psutil.NoSuchProcess(self.pid)

    psutil.Process.create_time = ended  # type: ignore[method-assign]
    try:
        await first.start(done)
        await first.close()  # waits for the record to be written
    finally:
        psutil.Process.create_time = gone  # type: ignore[method-assign]
    await eventually((tmp_path / "process" / f"{done.ref.key}.status").exists)

    second = runtime(tmp_path)
    adopted = {x.ref.key: x for x in await second.adopt()}
    ended_with = adopted[done.ref.key].exit
    assert ended_with is not None and ended_with.exit_code == 5
    await second.close()
