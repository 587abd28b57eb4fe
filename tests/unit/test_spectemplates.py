"""``SpecTemplates``: a spec converted from a kept shape equals one converted afresh."""

import pytest

from corral import convert
from corral.errors import ValidationError
from corral.v1 import types_pb2
from manager.spectemplates import SpecTemplates


def specs() -> list[types_pb2.TaskSpec]:
    plain = types_pb2.TaskSpec(name="a", runtime="fake", command=["echo", "hi"])
    rich = types_pb2.TaskSpec(
        name="b",
        runtime="process",
        command=["sh", "-c", "exit 0"],
        env={"A": "1", "B": "2"},
        labels={"team": "x"},
        constraints={"zone": "a"},
        working_dir="/tmp",
    )
    rich.resources.cpu = 0.5
    rich.restart_policy.max_attempts = 3
    rich.disconnect.replace = True
    rich.ports.add(container_port=80, host_port=8080)
    rich.depends_on.add(task_id="t-1")
    rich.stop_grace.FromSeconds(3)
    http = types_pb2.TaskSpec(name="c", runtime="http")
    http.http.url = "http://127.0.0.1:1/"
    http.http.method = "POST"
    return [plain, rich, http]


def test_every_copy_equals_a_fresh_conversion_and_keeps_its_name() -> None:
    templates = SpecTemplates()
    for message in specs():
        for name in ("one", "two", "three"):
            message.name = name
            got = templates.convert(message)
            assert got == convert.spec_from(message)
            assert got.name == name and message.name == name
    assert len(templates) == len(specs())  # one shape each, whatever the names


def test_specs_that_differ_beyond_their_name_are_kept_apart() -> None:
    templates = SpecTemplates()
    a = types_pb2.TaskSpec(name="x", runtime="fake", env={"K": "1"})
    b = types_pb2.TaskSpec(name="x", runtime="fake", env={"K": "2"})
    assert templates.convert(a).env == {"K": "1"}
    assert templates.convert(b).env == {"K": "2"}
    assert len(templates) == 2


def test_secrets_are_never_kept() -> None:
    templates = SpecTemplates()
    secret = types_pb2.TaskSpec(name="s", runtime="fake", secret_env={"TOKEN": "hunter2"})
    assert templates.convert(secret).secret_env == {"TOKEN": "hunter2"}
    assert len(templates) == 0


def test_a_bad_spec_raises_and_keeps_nothing() -> None:
    templates = SpecTemplates()
    bad = types_pb2.TaskSpec(name="k", runtime="kubernetes")
    bad.kubernetes.manifests.append("{not json")
    with pytest.raises(ValidationError, match=r"manifests\[0\]"):
        templates.convert(bad)
    assert len(templates) == 0 and bad.name == "k"


def test_the_cache_is_bounded() -> None:
    templates = SpecTemplates(limit=4)
    for i in range(10):
        templates.convert(types_pb2.TaskSpec(name="n", runtime="fake", env={"I": str(i)}))
    assert len(templates) <= 4
