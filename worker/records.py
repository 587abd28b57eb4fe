"""What the worker keeps on disk about the attempts it runs.

A restarted worker asks each runtime what is still running (``adopt``), but a
runtime may not know the spec (a process does not carry its health check or
deadline). So the supervisor writes each started attempt's assignment here,
as the wire ``TaskSpec`` (a stable, versioned encoding), and removes it when
the attempt ends. Also the stable node id lives here.
"""

from __future__ import annotations

import logging
import os
import uuid
from pathlib import Path

from corral import convert
from corral.model import NodeId, TaskId
from worker.runtimes.base import Assignment, AttemptRef

log = logging.getLogger(__name__)


class AttemptRecords:
    """``<dir>/<task>.<generation>.<runtime>.spec``: one file per running attempt."""

    def __init__(self, directory: Path, node_id: NodeId) -> None:
        self.directory = directory
        self.node_id = node_id

    def save(self, assignment: Assignment) -> None:
        ref = assignment.ref
        path = self.directory / f"{ref.key}.{assignment.spec.runtime}.spec"
        tmp = path.with_suffix(".tmp")
        data = convert.spec_bytes(assignment.spec)
        try:
            tmp.write_bytes(data)
        except FileNotFoundError:
            # The first record (or the directory was removed): make it then, not on
            # every start, which runs this before the task's process exists.
            self.directory.mkdir(parents=True, exist_ok=True)
            tmp.write_bytes(data)
        tmp.replace(path)

    def remove(self, ref: AttemptRef, runtime: str) -> None:
        (self.directory / f"{ref.key}.{runtime}.spec").unlink(missing_ok=True)

    def load(self) -> dict[str, Assignment]:
        """Saved assignments by attempt key; unreadable records are skipped, not fatal."""
        out: dict[str, Assignment] = {}
        if not self.directory.is_dir():
            return out
        for path in self.directory.glob("*.spec"):
            try:
                # The task id may contain dots; generation and runtime are the last two parts.
                task_id, generation, _runtime = path.stem.rsplit(".", 2)
                spec = convert.spec_from_bytes(path.read_bytes())
            except Exception as err:  # a torn or foreign file must not stop the worker
                log.warning("skipping unreadable attempt record %s: %s", path, err)
                continue
            ref = AttemptRef(TaskId(task_id), int(generation))
            out[ref.key] = Assignment(ref, spec, self.node_id)
        return out


def node_id(data_dir: Path) -> NodeId:
    """The node's stable id: made once, then read from ``<data_dir>/node-id``."""
    path = data_dir / "node-id"
    try:
        existing = path.read_text().strip()
    except FileNotFoundError:
        existing = ""
    if existing:
        return NodeId(existing)
    data_dir.mkdir(parents=True, exist_ok=True)
    new = f"node-{uuid.uuid4().hex[:12]}"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(new + "\n")
    os.replace(tmp, path)
    return NodeId(new)
