"""How the process runtime starts a task and learns how it ended.

``LAUNCHER`` wraps argv in a few lines of POSIX shell that record its exit
status in a file (see ``worker.runtimes.process`` for why); ``spawn`` forks
it in its own session with output going straight to the log file;
``watch_exit`` reaps it through a pidfd; the rest turns wait statuses and
exit codes into ``Exit`` values with a readable message.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from corral.model import TaskSpec
from worker.runtimes.base import Exit, Fence, StartError

SHELL = "/bin/sh"
# $0 is the status file, "$@" the task's argv. TERM/INT/HUP are caught (not
# ignored) so that the launcher survives a stop to record the status while
# argv gets the signals (they go to the whole group). A signal that arrives
# before argv's process exists is remembered and passed on once it does, so a
# stop right after the start is not lost. argv runs as a background job that
# the launcher waits for: a foreground job would make dash print "Terminated"
# into the task's output, and the wait loop resumes after a trapped signal
# until argv itself has ended. The launcher's own stderr is /dev/null; argv's
# reaches the log through fd 3. (As any background job of a non-interactive
# shell, argv starts with SIGINT and SIGQUIT ignored and stdin on /dev/null;
# stop uses SIGTERM and SIGKILL.)
LAUNCHER = (
    "exec 3>&2 2>/dev/null; s=; trap s=TERM TERM; trap s=INT INT; trap s=HUP HUP; "
    '"$@" 2>&3 3>&- & p=$!; exec 3>&-; [ -n "$s" ] && kill -$s $p; '
    "while :; do wait $p; c=$?; kill -0 $p || break; done; "
    'echo $c > "$0.tmp" && mv "$0.tmp" "$0"; exit $c'
)
# The fenced launcher: $1 is the worker's beacon directory (see worker.fencing),
# $2 the grace and $3 the kill wait in seconds, then argv. A watchdog subshell
# blocks reading the beacon FIFO, which ends the moment no worker holds it
# open; it then waits out the grace and, unless the pid file names a live
# worker again (which adopts the task), stops the whole group: SIGTERM, then
# SIGKILL after the kill wait. The watchdog ignores SIGTERM so that it
# outlives its own group's stop; the launcher kills it once argv has ended.
WATCHDOG = (
    'b=$1 g=$2 k=$3; shift 3; (trap "" TERM; exec </dev/null >/dev/null 2>&1; '
    'while :; do read x < "$b/alive"; sleep $g; read w < "$b/pid" && kill -0 $w || break; done; '
    "kill -TERM -$$; sleep $k; kill -KILL -$$) & w=$!; "
)
FENCED_LAUNCHER = WATCHDOG + LAUNCHER.replace("exit $c", "kill -KILL $w; exit $c")


def launcher(fence: Fence | None) -> tuple[str, list[str]]:
    """The script, and its arguments between the status file and argv.

    Without a fence (a runtime used on its own, as in tests) nothing watches
    for the worker's death.
    """
    if fence is None:
        return LAUNCHER, []
    times = [f"{fence.grace():.3f}", f"{fence.kill_wait():.3f}"]
    return FENCED_LAUNCHER, [str(fence.beacon), *times]


def check_startable(spec: TaskSpec, env: dict[str, str]) -> None:
    """Refuse early what would otherwise only show as exit 127 in the log."""
    if not spec.command:
        raise StartError("command is empty")
    program = spec.command[0]
    if shutil.which(program, path=env.get("PATH", os.defpath)) is None:
        raise StartError(f"executable not found: {program}")
    if spec.working_dir and not os.path.isdir(spec.working_dir):
        raise StartError(f"working directory not found: {spec.working_dir}")


def open_log(path: Path) -> int:
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC
    try:
        return os.open(path, flags, 0o644)
    except FileNotFoundError:  # the task's first attempt: make its directory
        path.parent.mkdir(parents=True, exist_ok=True)
        return os.open(path, flags, 0o644)


@dataclass
class Spawned:
    pid: int


def spawn(argv: list[str], *, fd: int, env: dict[str, str], cwd: str | None) -> Spawned:
    """Fork and exec on the loop's thread: it takes well under a millisecond,
    less than handing it to a thread would."""
    try:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=fd,
            stderr=fd,
            env=env,
            cwd=cwd,
            start_new_session=True,
            close_fds=True,
        )
    except OSError as err:
        raise StartError(f"cannot start: {err}") from err
    # Popen's own bookkeeping is not used (the pidfd watcher reaps the child);
    # marking it finished keeps Popen.__del__ from warning about a live child
    # that, by design, may outlive this worker.
    proc.returncode = 0
    return Spawned(proc.pid)


def watch_exit(pid: int) -> tuple[asyncio.Future[int], Callable[[], None]]:
    """A future for the child's wait status, driven by a pidfd (no thread per child).

    The result is the exit code, or minus the signal number that killed it.
    """
    loop = asyncio.get_running_loop()
    fut: asyncio.Future[int] = loop.create_future()
    pidfd = os.pidfd_open(pid)
    watching = True

    def unwatch() -> None:
        nonlocal watching
        if watching:
            watching = False
            loop.remove_reader(pidfd)
            os.close(pidfd)

    def reap() -> None:
        try:
            got, status = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:  # reaped by someone else: the status is lost
            got, status = pid, 0
        if got == 0:
            return
        unwatch()
        if not fut.done():
            fut.set_result(os.waitstatus_to_exitcode(status))

    loop.add_reader(pidfd, reap)
    return fut, unwatch


def kill_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def exit_from_code(code: int, *, memory: int) -> Exit:
    if code == 0:
        return Exit(0)
    if code > 128 and code - 128 < signal.NSIG:
        sig = code - 128
        return Exit(code, signal_message(sig, stopping=False))
    hint = " (memory limit reached?)" if memory else ""
    return Exit(code, f"exit code {code}{hint}")


def signal_message(sig: int, *, stopping: bool) -> str:
    try:
        name = signal.Signals(sig).name
    except ValueError:
        name = f"signal {sig}"
    if sig == signal.SIGKILL and not stopping:
        return f"killed by {name} (OOM-killed?)"
    return f"killed by {name}"
