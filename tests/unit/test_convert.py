from corral import convert
from corral.model import (
    HealthCheck,
    HttpProbe,
    KubernetesSpec,
    Task,
    TaskId,
    TaskSpec,
    TaskState,
    TaskStatus,
)
from corral.v1 import types_pb2


def test_spec_round_trip_keeps_integers_in_manifests() -> None:
    spec = TaskSpec(
        name="web",
        command=("echo", "hi"),
        health_check=HealthCheck(HttpProbe("/health", 8080), interval=0.5),
        kubernetes=KubernetesSpec(manifests=({"kind": "Deployment", "spec": {"replicas": 1}},)),
    )
    back = convert.spec_from(convert.spec_to(spec))
    assert back == spec
    assert back.kubernetes is not None
    assert isinstance(back.kubernetes.manifests[0]["spec"]["replicas"], int)


def test_task_round_trip_keeps_state_and_optional_exit_code() -> None:
    task = Task(
        TaskId("t1"), TaskSpec(name="a", command=("true",)), TaskStatus(state=TaskState.RUNNING)
    )
    back = convert.task_from(convert.task_to(task))
    assert back == task
    assert back.status.exit_code is None
    done = Task(task.id, task.spec, TaskStatus(state=TaskState.FAILED, exit_code=0))
    assert convert.task_from(convert.task_to(done)).status.exit_code == 0


def test_cube_numbers() -> None:
    assert [s.cube for s in (TaskState.PENDING, TaskState.RUNNING, TaskState.FAILED)] == [0, 2, 4]
    assert TaskState.from_cube(3) is TaskState.COMPLETED


def test_http_bodies_travel_as_text_when_they_are_utf8() -> None:
    from corral.convert import http_result_from, http_result_to
    from corral.model import HttpResult

    text = http_result_to(HttpResult(200, 1.0, "pong-a é\n".encode(), False, ""))
    assert text.body_text == "pong-a é\n" and text.body == b""
    assert http_result_from(text).body == "pong-a é\n".encode()
    binary = http_result_to(HttpResult(200, 1.0, b"\x89PNG\xff\x00", False, ""))
    assert binary.body == b"\x89PNG\xff\x00" and binary.body_text == ""
    assert http_result_from(binary).body == b"\x89PNG\xff\x00"
    # A body cut inside a character (the runtime's bound) is still text, minus that character.
    cut = http_result_to(HttpResult(200, 1.0, "ab é".encode()[:-1], True, ""))
    assert cut.body_text == "ab " and cut.body_truncated


def test_jobs_environments_and_schedules_round_trip_through_the_wire() -> None:
    """What the client reads back (domain) prints as the same JSON the server sent."""
    from google.protobuf import json_format

    from corral.convert import environments, jobs, schedules
    from corral.v1 import environments_pb2, jobs_pb2
    from corral.v1 import schedules_pb2 as pb

    job = jobs_pb2.Job(name="j", cmd="true", task_id="j", runtime="process", state=4)
    job.created_at.FromSeconds(5)
    job.status.failed = 1
    job.status.start_time.FromSeconds(6)
    condition = job.status.conditions.add(type="Failed", status="True", reason="Stopped")
    condition.last_probe_time.FromSeconds(7)
    condition.last_transition_time.FromSeconds(7)
    assert jobs.job_to(jobs.job_from(job)) == job

    env = environments_pb2.Environment(repl_id="p", language="nodejs", runtime="docker", state=3)
    env.ports.add(container_port=3000, host_port=31000, protocol="tcp")
    env.created_at.FromSeconds(9)
    assert environments.environment_to(environments.environment_from(env)) == env

    schedule = json_format.ParseDict(
        {
            "name": "s",
            "interval": "60s",
            "http": {
                "endpoints": [
                    {"name": "a", "url": "http://127.0.0.1:1/", "method": "GET", "timeout": "10s"}
                ]
            },
            "concurrencyPolicy": "CONCURRENCY_POLICY_FORBID",
            "startingDeadline": "60s",
            "historyLimit": 20,
            "createdAt": "2026-01-01T00:00:00Z",
            "status": {"state": "SCHEDULE_STATE_RUNNING", "activeRuns": 1},
        },
        pb.Schedule(),
    )
    assert schedules.schedule_to(schedules.schedule_from(schedule)) == schedule


def test_an_absent_message_field_converts_as_an_empty_one() -> None:
    # spec_from skips converting absent fields; the result must not tell.
    absent = types_pb2.TaskSpec(name="a")
    empty = types_pb2.TaskSpec(name="a")
    for field in ("resources", "restart_policy", "disconnect", "deadline"):
        getattr(empty, field).SetInParent()
    assert convert.spec_from(absent) == convert.spec_from(empty)
