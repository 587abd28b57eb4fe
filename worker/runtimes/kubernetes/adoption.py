"""Adoption and orphans: what a (re)started worker finds labelled with its name.

``adopt()`` (at worker start) registers every object labelled with this
worker's name, grouped by attempt; the manager's Reconcile then stops the
attempts it no longer owns, which deletes their objects. Beyond that, a
periodic sweep deletes labelled objects of this worker whose attempt the
runtime does not know (left by a failed delete, or by a worker that died
between create and register). The sweep starts with ``adopt()``, so a worker
never sweeps before it has adopted what it owns. Both decisions are plain
functions over the listed objects.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Container
from datetime import datetime
from typing import Any

from corral.model import TaskId
from worker.runtimes import kubeobjects as ko
from worker.runtimes.base import Adopted, AttemptRef, Exit
from worker.runtimes.kubernetes.attempts import KubeAttempt
from worker.runtimes.kubernetes.cluster import ObjectRef


def groups(found: list[dict[str, Any]], known: Container[str]) -> dict[str, list[dict[str, Any]]]:
    """Listed objects by attempt key, leaving out attempts already known."""
    out: dict[str, list[dict[str, Any]]] = {}
    for obj in found:
        key = ko.attempt_key(obj)
        if key is not None and key not in known:
            out.setdefault(key, []).append(obj)
    return out


def adopt_group(objs: list[dict[str, Any]]) -> tuple[KubeAttempt, Adopted]:
    """The attempt that one group of labelled objects makes up, and how it is reported."""
    meta = objs[0]["metadata"]
    task_id = TaskId(str((meta.get("annotations") or {}).get(ko.ANNOTATION_TASK, "")))
    ref = AttemptRef(task_id, int(meta["labels"][ko.LABEL_GENERATION]))
    refs = [ObjectRef(o["kind"], o["metadata"]["namespace"], o["metadata"]["name"]) for o in objs]
    jobs = [o for o in objs if o["kind"] == "Job"]
    loop = asyncio.get_running_loop()
    attempt = KubeAttempt(ref, None, refs, bool(jobs), loop.create_future(), created=True)
    outcome = ko.job_outcome(jobs[0]) if jobs else None
    if outcome is not None:
        exit_ = Exit(0 if outcome.succeeded else None, outcome.reason or "completed")
        exit_ = Exit(exit_.exit_code, exit_.message, succeeded=outcome.succeeded)
        attempt.finish(exit_)
        return attempt, Adopted(ref, None, exit_)
    if any(ko.deployment_available(o) for o in objs if o["kind"] == "Deployment"):
        attempt.available.set()
    return attempt, Adopted(ref, None)


def orphans(
    found: list[dict[str, Any]], known: Container[str], *, now: float, grace: float
) -> list[ObjectRef]:
    """Listed objects whose attempt is unknown and older than ``grace`` seconds."""
    out: list[ObjectRef] = []
    for obj in found:
        if ko.attempt_key(obj) in known:
            continue
        meta = obj["metadata"]
        created = _timestamp(meta.get("creationTimestamp"))
        if created is not None and now - created < grace:
            continue  # possibly a start in flight
        out.append(ObjectRef(obj["kind"], meta["namespace"], meta["name"]))
    return out


def _timestamp(text: Any) -> float | None:
    if not isinstance(text, str):
        return None
    with contextlib.suppress(ValueError):
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    return None
