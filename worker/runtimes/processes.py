"""What the ``process`` runtime knows of each attempt's process, and keeps on disk.

``<data>/process/<task>.<gen>.json`` keeps the pid and the psutil create time
of each launched attempt; a live pid whose create time matches is still ours
(a reused pid has another create time), so a restarted worker adopts it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psutil

from corral.model import TaskSpec
from worker.runtimes.base import AttemptRef, Exit

log = logging.getLogger(__name__)


@dataclass
class ProcessAttempt:
    ref: AttemptRef
    pid: int
    log_path: Path
    meta_path: Path
    status_path: Path
    spec: TaskSpec | None
    # Our child when we spawned it; None for adopted processes (not our children).
    exited: asyncio.Future[int] | None = None
    unwatch: Callable[[], None] | None = None
    adopted: bool = False
    stopping: bool = False
    ps: psutil.Process | None = None
    ended: Exit | None = None
    ending: asyncio.Future[Exit] | None = None
    # Loop time of the spawn (0 for adopted attempts: long past their start).
    spawned_at: float = 0.0
    # The adoption record being written (a thread); None for adopted attempts.
    recorded: asyncio.Future[None] | None = None


def same_process(pid: int, create_time: float) -> psutil.Process | None:
    """The process ``pid`` if it is still the one created at ``create_time`` (and not a zombie)."""
    try:
        proc = psutil.Process(pid)
        if abs(proc.create_time() - create_time) < 0.05 and proc.status() != psutil.STATUS_ZOMBIE:
            return proc
    except psutil.Error:
        pass
    return None


def alive(run: ProcessAttempt) -> bool:
    try:
        return (
            run.ps is not None and run.ps.is_running() and run.ps.status() != psutil.STATUS_ZOMBIE
        )
    except psutil.Error:
        return False


def write_record(run: ProcessAttempt) -> None:
    """Keep what a restarted worker needs to adopt this attempt (written aside, renamed)."""
    try:
        create_time: float | None = psutil.Process(run.pid).create_time()
    except psutil.Error:
        # Already gone (a short command, or a busy worker whose thread ran late): still
        # recorded, so a worker restarted before this one reported the exit reads it
        # from the status file instead of losing the attempt.
        create_time = None
    record = {
        "task_id": run.ref.task_id,
        "generation": run.ref.generation,
        "pid": run.pid,
        "create_time": create_time,
        "log": str(run.log_path),
        "written_at": time.time(),
    }
    tmp = run.meta_path.with_suffix(".tmp")
    try:
        tmp.write_text(json.dumps(record))
        tmp.replace(run.meta_path)
    except OSError as err:
        log.error("cannot write %s (a restarted worker will not adopt it): %s", tmp, err)


def memory_limit(spec: TaskSpec | None) -> int:
    return spec.resources.memory_bytes if spec else 0
