"""The ``process`` runtime: tasks as local processes, the embedded default.

Each attempt runs as ``/bin/sh -c <launcher> <status-file> argv...``: the
launcher is a few lines of POSIX shell that runs argv *as arguments* (``"$@"``,
never parsed or interpolated by a shell), then writes argv's exit status to a
file and exits with it. Why a launcher at all: a worker that restarts is no
longer the parent of the processes it started, and the kernel tells an
exit status only to the parent. The launcher outlives nothing and costs one
``dash`` exec (well under a millisecond), far cheaper than a Python shim; its
status file lets a restarted worker report how an adopted attempt ended.

- Own session (``start_new_session=True``, never ``preexec_fn``: unsafe with
  grpcio's threads), so a stop signals the whole process group and the task
  survives the worker's terminal going away.
- stdout and stderr go straight to the attempt's log file (not a pipe, so the
  task survives a worker restart); the size bound is enforced from outside.
- Stop: SIGTERM to the group (the launcher traps it so it can still record
  the status; argv gets the default action), SIGKILL after the grace period.
- Memory: ``ulimit -v`` (RLIMIT_AS) is set by the launcher before it execs
  argv, so there is no window where the task runs unlimited. RLIMIT_AS bounds
  address space, not resident memory: runtimes that reserve large virtual
  areas (JVM, Go) need a limit well above their working set.
- CPU: not enforceable without cgroups; requested cores are only scheduled
  against, never capped.
- Adoption: ``<data>/process/<task>.<gen>.json`` keeps the pid and the psutil
  create time; a live pid whose create time matches is still ours (a reused
  pid has another create time). Adopted attempts are waited by polling.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
from collections import deque
from collections.abc import AsyncIterator
from pathlib import Path

import psutil

from corral.model import PortMapping, TaskSpec
from worker.config import WorkerConfig
from worker.logfiles import LogStore, read_log
from worker.runtimes import launching, taskenv
from worker.runtimes.base import Adopted, Assignment, AttemptRef, Exit, Fence, Started
from worker.runtimes.processes import (
    ProcessAttempt,
    alive,
    memory_limit,
    same_process,
    write_record,
)
from worker.runtimes.taskenv import TaskUser, task_user

log = logging.getLogger(__name__)

ADOPTED_POLL = 0.2
KEEP_ENDED = 1000
STARTUP_WINDOW = 1.0
RETERM_AFTER = 0.2
LOG_ENFORCE_EVERY = 1.0


def create(config: WorkerConfig) -> ProcessRuntime:
    logs = LogStore(config.data_dir / "logs", config.log_max_bytes)
    return ProcessRuntime(config.data_dir / "process", logs, user=task_user(config.task_user))


class ProcessRuntime:
    name = "process"

    def __init__(self, root: Path, logs: LogStore, *, user: TaskUser | None = None) -> None:
        self.root = root
        self.logstore = logs
        # Who tasks run as (taskenv): the worker itself unless it is root.
        self.user = user or task_user("")
        self._attempts: dict[str, ProcessAttempt] = {}
        self._ended: deque[str] = deque()
        self._root_made = False
        self._enforcer: asyncio.Task[None] | None = None
        self._fence: Fence | None = None

    def fence_with(self, fence: Fence) -> None:
        """From now on each launcher stops its task when the worker is gone past the grace."""
        self._fence = fence

    async def available(self) -> bool:
        return os.access(launching.SHELL, os.X_OK)

    # -- start -----------------------------------------------------------------

    async def start(self, assignment: Assignment) -> Started:
        ref, spec = assignment.ref, assignment.spec
        if ref.key in self._attempts:
            return self._started(spec)
        corral = {"CORRAL_TASK_ID": ref.task_id, "CORRAL_GENERATION": str(ref.generation)}
        env = taskenv.environment(spec, self.user, corral)
        launching.check_startable(spec, env)
        if not self._root_made:
            self.root.mkdir(parents=True, exist_ok=True)
            self._root_made = True
        log_path = self.logstore.path(ref.task_id, ref.generation)
        status_path = self.root / f"{ref.key}.status"
        status_path.unlink(missing_ok=True)
        script, fenced = launching.launcher(self._fence)
        if spec.resources.memory_bytes > 0:
            script = f"ulimit -v {max(1, spec.resources.memory_bytes // 1024)}; {script}"
        fd = launching.open_log(log_path)
        try:
            proc = launching.spawn(
                [
                    launching.SHELL,
                    "-c",
                    script,
                    str(status_path),
                    *fenced,
                    *taskenv.as_user(self.user, spec.command),
                ],
                fd=fd,
                env=env,
                cwd=spec.working_dir or None,
            )
        finally:
            os.close(fd)
        meta_path = self.root / f"{ref.key}.json"
        run = ProcessAttempt(ref, proc.pid, log_path, meta_path, status_path, spec)
        run.spawned_at = asyncio.get_running_loop().time()
        run.exited, run.unwatch = launching.watch_exit(proc.pid)
        self._attempts[ref.key] = run
        # Written beside the loop, not on it: the new process's create time is in
        # /proc/<pid>/stat, and the kernel holds that read until the launcher's exec
        # has finished (up to a millisecond after vfork returns), which would hold
        # RUNNING back. A worker that dies before the record is written (about a
        # millisecond) leaves a process it cannot adopt; its launcher's fence stops it.
        run.recorded = asyncio.ensure_future(asyncio.to_thread(write_record, run))
        self._ensure_enforcer()
        return self._started(spec)

    def _started(self, spec: TaskSpec) -> Started:
        # Processes share the node's network: a port is its own host port.
        ports = tuple(
            PortMapping(p.container_port, p.host_port or p.container_port, p.protocol)
            for p in spec.ports
        )
        return Started(ports=ports, host="127.0.0.1")

    # -- wait and stop ---------------------------------------------------------

    async def wait(self, ref: AttemptRef) -> Exit:
        run = self._attempts.get(ref.key)
        if run is None:
            return Exit(None, "unknown attempt")
        return await asyncio.shield(self._ending(run))

    def _ending(self, run: ProcessAttempt) -> asyncio.Future[Exit]:
        """One watcher per attempt, however many callers wait (supervisor, stop, logs)."""
        if run.ending is None:
            run.ending = asyncio.ensure_future(self._watch(run))
        return run.ending

    async def _watch(self, run: ProcessAttempt) -> Exit:
        if run.ended is None:
            run.ended = await (self._wait_adopted(run) if run.adopted else self._wait_child(run))
            if run.recorded is not None:
                # A record written after the files were forgotten would outlive its attempt.
                await asyncio.shield(run.recorded)
            self._forget_files(run)
            self._retire(run.ref.key)
        return run.ended

    def _retire(self, key: str) -> None:
        """Keep a bounded number of ended attempts; their logs stay readable by path."""
        self._ended.append(key)
        while len(self._ended) > KEEP_ENDED:
            self._attempts.pop(self._ended.popleft(), None)

    async def _wait_child(self, run: ProcessAttempt) -> Exit:
        assert run.exited is not None
        status = await asyncio.shield(run.exited)
        launching.kill_group(run.pid, signal.SIGKILL)  # leftovers the task started in its group
        self.logstore.enforce_limit(run.log_path)
        if status >= 0:
            return launching.exit_from_code(status, memory=memory_limit(run.spec))
        sig = -status
        # The launcher itself was killed (SIGKILL on stop or by the OOM killer).
        return Exit(128 + sig, launching.signal_message(sig, stopping=run.stopping))

    async def _wait_adopted(self, run: ProcessAttempt) -> Exit:
        # Not our child: no pidfd wait is possible after the parent changed, so poll.
        while alive(run):  # noqa: ASYNC110
            await asyncio.sleep(ADOPTED_POLL)
        return self._status_from_file(run)

    def _status_from_file(self, run: ProcessAttempt) -> Exit:
        try:
            code = int(run.status_path.read_text().strip())
        except (OSError, ValueError):
            if run.stopping:
                return Exit(137, "killed by SIGKILL")
            # The launcher was killed before it could record how argv ended.
            return Exit(None, "process ended while the worker was away; exit status unknown")
        return launching.exit_from_code(code, memory=memory_limit(run.spec))

    async def stop(self, ref: AttemptRef, grace: float) -> None:
        run = self._attempts.get(ref.key)
        if run is None or run.ended is not None:
            return
        run.stopping = True
        ending = self._ending(run)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        launching.kill_group(run.pid, signal.SIGTERM)
        if loop.time() - run.spawned_at < STARTUP_WINDOW:
            # A signal can land in the instant between the launcher's fork and
            # argv's exec, where the shell's own handlers swallow it. Only a
            # freshly started attempt can be in that instant: tell it once more.
            if await _ends_within(ending, min(RETERM_AFTER, grace)):
                return
            launching.kill_group(run.pid, signal.SIGTERM)
        if await _ends_within(ending, max(0.0, deadline - loop.time())):
            return
        if run.ended is None:
            launching.kill_group(run.pid, signal.SIGKILL)
            if run.adopted:
                # Not our child: nobody records its status once the launcher is killed.
                with contextlib.suppress(psutil.Error):
                    psutil.Process(run.pid).kill()
        await asyncio.shield(ending)

    # -- logs, exec, usage -----------------------------------------------------

    def logs(self, ref: AttemptRef, *, tail: int = 0, follow: bool = False) -> AsyncIterator[bytes]:
        run = self._attempts.get(ref.key)
        path = run.log_path if run else self.logstore.path(ref.task_id, ref.generation)
        if run is not None and run.ended is None:
            self._ending(run)

        def done() -> bool:
            return run is None or run.ended is not None

        return read_log(path, tail=tail, follow=follow, done=done)

    async def exec(self, ref: AttemptRef, argv: tuple[str, ...], timeout: float) -> int:
        run = self._attempts.get(ref.key)
        spec = run.spec if run else None
        corral = {"CORRAL_TASK_ID": ref.task_id, "CORRAL_GENERATION": str(ref.generation)}
        env = taskenv.environment(spec or TaskSpec(name="probe"), self.user, corral)
        proc = await asyncio.create_subprocess_exec(
            *taskenv.as_user(self.user, argv),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
            env=env,
            cwd=(spec.working_dir or None) if spec else None,
            start_new_session=True,
        )
        try:
            async with asyncio.timeout(timeout):
                return await proc.wait()
        except TimeoutError:
            return 124
        finally:
            # Also when the caller gave up first (cancelled): no probe outlives its check.
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                await proc.wait()

    async def usage(self) -> tuple[float, int]:
        return await asyncio.to_thread(self._usage)

    def _usage(self) -> tuple[float, int]:
        cpu, memory = 0.0, 0
        for run in list(self._attempts.values()):
            if run.ended is not None:
                continue
            try:
                if run.ps is None:
                    run.ps = psutil.Process(run.pid)
                procs = [run.ps, *run.ps.children(recursive=True)]
            except psutil.Error:
                continue
            for p in procs:
                with contextlib.suppress(psutil.Error):
                    cpu += p.cpu_percent(None) / 100.0
                    memory += p.memory_info().rss
        return cpu, memory

    # -- adoption --------------------------------------------------------------

    async def adopt(self) -> list[Adopted]:
        if not self.root.is_dir():
            return []
        found: list[Adopted] = []
        for meta_path in sorted(self.root.glob("*.json")):
            adopted = self._adopt_one(meta_path)
            if adopted is not None:
                found.append(adopted)
        if any(r.adopted and r.ended is None for r in self._attempts.values()):
            self._ensure_enforcer()
        return found

    def _adopt_one(self, meta_path: Path) -> Adopted | None:
        try:
            meta = json.loads(meta_path.read_text())
            ref = AttemptRef(meta["task_id"], int(meta["generation"]))
        except (OSError, ValueError, KeyError) as err:
            log.warning("unreadable process record %s: %s", meta_path, err)
            return None
        if ref.key in self._attempts:
            return None
        run = ProcessAttempt(
            ref,
            int(meta["pid"]),
            Path(meta["log"]),
            meta_path,
            self.root / f"{ref.key}.status",
            None,
            adopted=True,
        )
        created = meta.get("create_time")
        # No create time: the process had ended before its record was written.
        run.ps = None if created is None else same_process(run.pid, float(created))
        self._attempts[ref.key] = run
        # The status file is written once argv has ended: a launcher still alive
        # then is only about to exit.
        if run.ps is None or run.status_path.exists():
            run.ended = self._status_from_file(run)
            self._forget_files(run)
            self._retire(ref.key)
            return Adopted(ref, None, exit=run.ended)
        return Adopted(ref, None, started=Started())

    # -- housekeeping ----------------------------------------------------------

    def _forget_files(self, run: ProcessAttempt) -> None:
        run.meta_path.unlink(missing_ok=True)
        run.status_path.unlink(missing_ok=True)

    def _ensure_enforcer(self) -> None:
        if self._enforcer is None or self._enforcer.done():
            self._enforcer = asyncio.get_running_loop().create_task(self._enforce_logs())

    async def _enforce_logs(self) -> None:
        """Keep running attempts' log files within their bound (they write directly)."""
        while any(r.ended is None for r in self._attempts.values()):
            await asyncio.sleep(LOG_ENFORCE_EVERY)
            paths = [r.log_path for r in self._attempts.values() if r.ended is None]
            await asyncio.to_thread(self._enforce_all, paths)

    def _enforce_all(self, paths: list[Path]) -> None:
        for path in paths:
            self.logstore.enforce_limit(path)

    async def close(self) -> None:
        # Running attempts keep running; a restarted worker adopts them.
        if self._enforcer is not None:
            self._enforcer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._enforcer
        # A restarted worker adopts by these records: let the ones being written land.
        writing = [r.recorded for r in self._attempts.values() if r.recorded is not None]
        if writing:
            await asyncio.wait(writing)
        for run in self._attempts.values():
            if run.ending is not None and not run.ending.done():
                run.ending.cancel()
            if run.unwatch is not None:
                run.unwatch()
            if run.exited is not None and not run.exited.done():
                run.exited.cancel()


# -- process plumbing ----------------------------------------------------------


async def _ends_within(ending: asyncio.Future[Exit], seconds: float) -> bool:
    """Wait up to ``seconds`` without cancelling ``ending`` (asyncio.wait never does)."""
    done, _ = await asyncio.wait({ending}, timeout=seconds)
    return bool(done)
