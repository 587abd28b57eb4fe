"""Kubernetes objects as plain dicts: what the ``kubernetes`` runtime sends and reads.

Kept apart from ``worker.runtimes.kubernetes`` (the only module that imports
the client) so that building a Job, labelling an environment's manifests and
reading a pod's failure reason are pure functions, testable without a server.

Labels tie every object to one attempt: ``corral.task-id`` and
``corral.generation`` (a label-safe form of the task id; the exact id travels
in an annotation because Cube ids may hold ':' and be 128 characters long),
``corral.worker`` (which worker owns it, so that two workers sharing a
cluster never adopt or sweep each other's objects) and, for environments,
``corral.environment``.
"""

from __future__ import annotations

import copy
import hashlib
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from corral.model import TaskSpec

LABEL_TASK = "corral.task-id"
LABEL_GENERATION = "corral.generation"
LABEL_WORKER = "corral.worker"
LABEL_ENVIRONMENT = "corral.environment"
ANNOTATION_TASK = "corral.task-id"

# Long enough for the runtime to copy a finished Job's logs (it streams them
# while the pod runs, so this is a safety margin), short enough not to pile up.
JOB_TTL_SECONDS = 600

# Waiting reasons after which a pod will not start without someone changing it.
STUCK_REASONS = frozenset(
    {
        "ImagePullBackOff",
        "ErrImagePull",
        "InvalidImageName",
        "CreateContainerConfigError",
        "CreateContainerError",
        "ErrImageNeverPull",
    }
)

_NOT_LABEL = re.compile(r"[^a-z0-9-]+")


def label_value(text: str) -> str:
    """A label-safe, stable form of ``text`` (at most 63 characters).

    Valid values pass unchanged; others are slugged and suffixed with a hash
    so that two different ids never share a value.
    """
    if re.fullmatch(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?", text):
        return text
    digest = hashlib.sha1(text.encode()).hexdigest()[:8]
    slug = _NOT_LABEL.sub("-", text.lower()).strip("-")[:50].strip("-")
    return f"{slug}-{digest}" if slug else digest


def job_name(task_id: str, generation: int) -> str:
    """A DNS-1123 label naming the Job of one attempt."""
    suffix = f"-{generation}"
    base = label_value(task_id)
    return f"corral-{base}"[: 63 - len(suffix)].rstrip("-") + suffix


def attempt_labels(task_id: str, generation: int, worker: str) -> dict[str, str]:
    return {
        LABEL_TASK: label_value(task_id),
        LABEL_GENERATION: str(generation),
        LABEL_WORKER: worker,
    }


def quantity_cpu(cores: float) -> str:
    return f"{max(1, math.ceil(cores * 1000))}m"


def resource_limits(spec: TaskSpec) -> dict[str, str]:
    res = spec.resources
    out: dict[str, str] = {}
    if res.cpu > 0:
        out["cpu"] = quantity_cpu(res.cpu)
    if res.memory_bytes > 0:
        out["memory"] = str(res.memory_bytes)
    if res.disk_bytes > 0:
        out["ephemeral-storage"] = str(res.disk_bytes)
    return out


def job_manifest(
    spec: TaskSpec, *, task_id: str, generation: int, worker: str, namespace: str
) -> dict[str, Any]:
    """The batch/v1 Job of one run-to-completion attempt.

    ``backoffLimit`` is 0: each Corral attempt is one pod, and Corral's own
    restart policy makes the next attempt (a new generation, fenced, with its
    own logs). A Kubernetes backoff on top would multiply the attempts the
    policy allows and hide them from the manager.
    """
    labels = attempt_labels(task_id, generation, worker)
    container: dict[str, Any] = {"name": "task", "image": spec.image}
    if spec.command:
        container["command"] = list(spec.command)
    if spec.env or spec.secret_env:
        variables = {**spec.env, **spec.secret_env}
        container["env"] = [{"name": k, "value": v} for k, v in sorted(variables.items())]
    if spec.working_dir:
        container["workingDir"] = spec.working_dir
    limits = resource_limits(spec)
    if limits:
        container["resources"] = {"requests": dict(limits), "limits": dict(limits)}
    job_spec: dict[str, Any] = {
        "backoffLimit": 0,
        "ttlSecondsAfterFinished": JOB_TTL_SECONDS,
        "template": {
            "metadata": {"labels": dict(labels)},
            "spec": {
                "restartPolicy": "Never",
                "terminationGracePeriodSeconds": max(0, math.ceil(spec.stop_grace)),
                "containers": [container],
            },
        },
    }
    if spec.deadline > 0:
        job_spec["activeDeadlineSeconds"] = max(1, math.ceil(spec.deadline))
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": job_name(task_id, generation),
            "namespace": namespace,
            "labels": labels,
            "annotations": {ANNOTATION_TASK: task_id},
        },
        "spec": job_spec,
    }


def label_manifest(
    manifest: Mapping[str, Any],
    *,
    task_id: str,
    generation: int,
    worker: str,
    namespace: str,
) -> dict[str, Any]:
    """A copy of an environment's object, labelled for its attempt.

    Pod templates get the labels too, so the runtime's pod watch sees the
    Deployment's pods. Selectors are left alone: extra template labels still match.
    """
    obj = copy.deepcopy(dict(manifest))
    labels = attempt_labels(task_id, generation, worker)
    meta = obj.setdefault("metadata", {})
    if obj.get("kind") != "Namespace":
        meta.setdefault("namespace", namespace)
    meta["labels"] = {**meta.get("labels", {}), **labels}
    meta["annotations"] = {**meta.get("annotations", {}), ANNOTATION_TASK: task_id}
    template = obj.get("spec", {}).get("template")
    if isinstance(template, dict):
        tmeta = template.setdefault("metadata", {})
        tmeta["labels"] = {**tmeta.get("labels", {}), **labels}
    return obj


@dataclass(frozen=True, slots=True)
class PodOutcome:
    """What a pod says about its attempt."""

    phase: str
    # Set when the pod ended or is stuck: "OOMKilled", "ImagePullBackOff", ...
    reason: str = ""
    message: str = ""
    exit_code: int | None = None

    @property
    def stuck(self) -> bool:
        return self.reason in STUCK_REASONS

    @property
    def ended(self) -> bool:
        return self.phase in ("Succeeded", "Failed")

    def describe(self) -> str:
        return ": ".join(p for p in (self.reason, self.message) if p)


def pod_outcome(pod: Mapping[str, Any]) -> PodOutcome:
    status = pod.get("status") or {}
    phase = str(status.get("phase") or "Pending")
    for cs in status.get("containerStatuses") or []:
        state = cs.get("state") or {}
        if "terminated" in state:
            term = state["terminated"] or {}
            return PodOutcome(
                phase,
                str(term.get("reason") or ""),
                str(term.get("message") or ""),
                term.get("exitCode"),
            )
        waiting = state.get("waiting") or {}
        if waiting.get("reason") in STUCK_REASONS:
            return PodOutcome(phase, waiting["reason"], str(waiting.get("message") or ""))
    # A pod killed for its deadline has no container status, only a pod reason.
    return PodOutcome(phase, str(status.get("reason") or ""), str(status.get("message") or ""))


@dataclass(frozen=True, slots=True)
class JobOutcome:
    succeeded: bool
    reason: str = ""
    message: str = ""


def job_outcome(job: Mapping[str, Any]) -> JobOutcome | None:
    """Complete or Failed from the Job's conditions; None while it runs."""
    for cond in (job.get("status") or {}).get("conditions") or []:
        if cond.get("status") != "True":
            continue
        if cond.get("type") == "Complete":
            return JobOutcome(True)
        if cond.get("type") == "Failed":
            return JobOutcome(False, str(cond.get("reason") or ""), str(cond.get("message") or ""))
    return None


def deployment_available(deployment: Mapping[str, Any]) -> bool:
    return int((deployment.get("status") or {}).get("availableReplicas") or 0) > 0


def attempt_key(obj: Mapping[str, Any]) -> str | None:
    """``<label task id>.<generation>`` of a labelled object, None when unlabelled."""
    labels = (obj.get("metadata") or {}).get("labels") or {}
    task, gen = labels.get(LABEL_TASK), labels.get(LABEL_GENERATION)
    if not task or not gen:
        return None
    return f"{task}.{gen}"
