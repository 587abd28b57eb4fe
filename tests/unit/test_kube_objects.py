"""Pure helpers of the kubernetes runtime: names, labels, Job spec, pod and job outcomes."""

from __future__ import annotations

import re

from corral.model import Resources, RestartMode, RestartPolicy, TaskSpec
from worker.runtimes import kubeobjects as ko

DNS = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


def test_label_values_are_valid_and_distinct() -> None:
    assert ko.label_value("abc-123") == "abc-123"
    odd = ["Cube:ID", "cube:id", "x" * 128, "a.b", "-", "UPPER"]
    values = [ko.label_value(v) for v in odd]
    assert all(DNS.match(v) for v in values), values
    assert len(set(values)) == len(values)


def test_job_names_fit_in_a_label() -> None:
    name = ko.job_name("y" * 128, 123456)
    assert DNS.match(name) and name.endswith("-123456")


def test_job_manifest_follows_the_spec() -> None:
    spec = TaskSpec(
        name="j",
        runtime="kubernetes",
        image="busybox",
        command=("sh", "-c", "echo hi"),
        env={"B": "2", "A": "1"},
        resources=Resources(cpu=0.25, memory_bytes=1000, disk_bytes=5000),
        restart_policy=RestartPolicy(RestartMode.ON_FAILURE, max_attempts=3),
        deadline=9.5,
    )
    job = ko.job_manifest(spec, task_id="t", generation=2, worker="w", namespace="ns")
    assert job["metadata"]["namespace"] == "ns"
    assert job["metadata"]["labels"] == {
        "corral.task-id": "t",
        "corral.generation": "2",
        "corral.worker": "w",
    }
    s = job["spec"]
    # Corral's policy makes the retries (new generations); the Job never does.
    assert s["backoffLimit"] == 0
    assert s["activeDeadlineSeconds"] == 10
    assert s["ttlSecondsAfterFinished"] == ko.JOB_TTL_SECONDS
    c = s["template"]["spec"]["containers"][0]
    assert c["env"] == [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]
    assert c["resources"]["limits"] == {
        "cpu": "250m",
        "memory": "1000",
        "ephemeral-storage": "5000",
    }
    no_deadline = ko.job_manifest(
        TaskSpec(name="j", image="busybox"), task_id="t", generation=1, worker="w", namespace="n"
    )
    assert "activeDeadlineSeconds" not in no_deadline["spec"]
    assert "command" not in no_deadline["spec"]["template"]["spec"]["containers"][0]


def test_label_manifest_copies_and_labels_templates() -> None:
    original = {
        "kind": "Deployment",
        "metadata": {"name": "d", "labels": {"app": "d"}},
        "spec": {"template": {"metadata": {"labels": {"app": "d"}}}},
    }
    out = ko.label_manifest(original, task_id="t", generation=1, worker="w", namespace="ns")
    assert original["metadata"] == {"name": "d", "labels": {"app": "d"}}  # untouched
    assert out["metadata"]["namespace"] == "ns"
    assert out["metadata"]["labels"]["app"] == "d"
    assert out["spec"]["template"]["metadata"]["labels"]["corral.task-id"] == "t"


def test_pod_outcomes() -> None:
    oom = {
        "status": {
            "phase": "Failed",
            "containerStatuses": [
                {"state": {"terminated": {"exitCode": 137, "reason": "OOMKilled"}}}
            ],
        }
    }
    out = ko.pod_outcome(oom)
    assert out.ended and out.exit_code == 137 and out.reason == "OOMKilled"
    stuck = {
        "status": {
            "phase": "Pending",
            "containerStatuses": [
                {"state": {"waiting": {"reason": "ImagePullBackOff", "message": "no such image"}}}
            ],
        }
    }
    s = ko.pod_outcome(stuck)
    assert s.stuck and not s.ended and s.describe() == "ImagePullBackOff: no such image"
    deadline = {"status": {"phase": "Failed", "reason": "DeadlineExceeded", "message": "late"}}
    assert ko.pod_outcome(deadline).reason == "DeadlineExceeded"
    assert ko.pod_outcome({}).phase == "Pending"


def test_job_outcomes() -> None:
    assert ko.job_outcome({"status": {}}) is None
    done = {"status": {"conditions": [{"type": "Complete", "status": "True"}]}}
    assert ko.job_outcome(done) == ko.JobOutcome(True)
    failed = {
        "status": {
            "conditions": [
                {"type": "Suspended", "status": "False"},
                {"type": "Failed", "status": "True", "reason": "DeadlineExceeded"},
            ]
        }
    }
    assert ko.job_outcome(failed) == ko.JobOutcome(False, "DeadlineExceeded")
