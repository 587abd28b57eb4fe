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
