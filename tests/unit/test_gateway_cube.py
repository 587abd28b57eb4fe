"""Cube TaskEvent parsing and Cube-shaped output, without a network."""

from __future__ import annotations

import pytest

from corral.cube import CubeError, normalise_name, parse_event
from corral.cube_shapes import cube_task, go_time
from corral.model import (
    HealthCheck,
    HttpProbe,
    PortMapping,
    Resources,
    RestartMode,
    Task,
    TaskId,
    TaskSpec,
    TaskState,
    TaskStatus,
)

SEED = {
    "ID": "266592cd-960d-4091-981c-8c25c44b1018",
    "State": 2,
    "Task": {
        "State": 1,
        "ID": "266592cd-960d-4091-981c-8c25c44b1018",
        "Name": "task-1",
        "Image": "strm/helloworld-http",
    },
}


def test_seed_event() -> None:
    task_id, spec = parse_event(SEED)
    assert task_id == "266592cd-960d-4091-981c-8c25c44b1018"
    assert spec == TaskSpec(name="task-1", runtime="docker", image="strm/helloworld-http")


def test_fields_match_case_insensitively_as_go_does() -> None:
    task_id, spec = parse_event({"id": SEED["ID"], "task": {"name": "A", "image": "busybox"}})
    assert task_id == SEED["ID"]  # the event ID when Task.ID is missing
    assert spec.name == "a" and spec.labels == {"cube.name": "A"}


def test_full_task() -> None:
    _, spec = parse_event(
        {
            "Task": {
                "Name": "Echo Server #1",
                "Image": "timboring/echo-server:latest",
                "Cpu": 1,
                "Memory": 1024,
                "Disk": 2048,
                "ExposedPorts": {"7777/tcp": {}, "53/udp": {}},
                "PortBindings": {"7777/tcp": "8080"},
                "RestartPolicy": "on-failure",
                "HealthCheck": "/health",
                "ContainerID": "",
                "StartTime": "0001-01-01T00:00:00Z",
                "RestartCount": 0,
            }
        }
    )
    assert spec.name == "echo-server-1" and spec.labels["cube.name"] == "Echo Server #1"
    assert spec.resources == Resources(1.0, 1024, 2048)
    assert spec.ports == (PortMapping(7777, 8080, "tcp"), PortMapping(53, 0, "udp"))
    assert spec.restart_policy.mode is RestartMode.ON_FAILURE
    assert spec.health_check == HealthCheck(HttpProbe("/health", 7777))


def test_names() -> None:
    assert normalise_name("Task 1") == "task-1"
    assert normalise_name("--Hello__World--") == "hello-world"
    assert normalise_name("!!!") == ""
    _, spec = parse_event({"Task": {"ID": SEED["ID"], "Image": "busybox"}})
    assert spec.name == "task-266592cd"


@pytest.mark.parametrize(
    ("event", "message"),
    [
        ([], "cannot unmarshal array into Go struct field TaskEvent"),
        ({"Extra": 1, "Task": {}}, 'json: unknown field "Extra"'),
        ({"Task": {"Cpu": "1"}}, "cannot unmarshal string into Go struct field Task.Task.Cpu"),
        ({"Task": {"Memory": 0.5}}, "Task.Task.Memory of type int64"),
        ({"Task": {"State": 5}}, "Task.Task.State: Cube state must be 0-4"),
        ({"State": -1, "Task": {}}, "TaskEvent.State"),
        ({"Timestamp": "yesterday", "Task": {}}, "TaskEvent.Timestamp"),
        ({"Task": {"Name": "x" * 64}}, "Task.Name"),
        ({"Task": {"HealthCheck": "/h"}}, "Task.HealthCheck"),
        ({"Task": {"PortBindings": {"80/tcp": 8080}}}, "Task.PortBindings"),
        ({}, "Task: is required"),
    ],
)
def test_bad_events(event: object, message: str) -> None:
    with pytest.raises(CubeError) as err:
        parse_event(event)
    assert err.value.status == 400
    assert message in err.value.message


def test_go_time() -> None:
    assert go_time(None) == "0001-01-01T00:00:00Z"
    assert go_time(1653752818.0) == "2022-05-28T15:46:58Z"
    assert go_time(1653752818.25) == "2022-05-28T15:46:58.25Z"


def test_cube_task_shape() -> None:
    task_id, spec = parse_event(SEED)
    status = TaskStatus(
        state=TaskState.RUNNING,
        started_at=1653752818.5,
        ports=(PortMapping(80, 49153),),
        restart_count=2,
    )
    out = cube_task(Task(TaskId(task_id), spec, status))
    assert out["State"] == 2 and out["RestartCount"] == 2
    assert out["StartTime"] == "2022-05-28T15:46:58.5Z"
    assert out["HostPorts"] == {"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "49153"}]}
    stopped = TaskStatus(state=TaskState.STOPPED)
    assert cube_task(Task(TaskId(task_id), spec, stopped))["State"] == 3
