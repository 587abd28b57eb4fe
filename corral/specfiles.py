"""Task specs from files (``corral run -f spec.yaml``).

A spec file is the proto3 JSON of ``corral.v1.TaskSpec`` (the body of
``POST /v1/tasks`` minus the wrapper), written as JSON or YAML, so one file
serves the CLI, curl and grpcurl alike. ``{"spec": {...}, "id": "..."}`` (the
full SubmitTaskRequest) is accepted too. Parse errors name the field.

A workflow file is the body of ``POST /v1/tasks:batch``: ``tasks``, a list of
``{id, spec}`` naming each other in ``spec.dependsOn`` (``load_all``).

Cube's and gokube's task files (``task1.json``: a TaskEvent, or a bare Task,
in their PascalCase JSON) are read as their servers read them, keeping the
task's ID: proto JSON names start lowercase, theirs uppercase.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from google.protobuf import json_format

from corral import convert, cube, jsontext
from corral.errors import ValidationError
from corral.model import TaskSpec


def load(path: Path) -> tuple[TaskSpec, str]:
    """The spec in ``path`` and the task id it asks for ('' when none)."""
    data = _read(path)
    if isinstance(data, Mapping) and "tasks" in data:
        raise ValidationError("file", f"{path} is a workflow (a `tasks` list): use load_all")
    return from_dict(data)


def is_workflow(path: Path) -> bool:
    data = _read(path)
    return isinstance(data, Mapping) and "tasks" in data


def load_all(path: Path) -> list[tuple[TaskSpec, str]]:
    """Every task in ``path``: a workflow's ``tasks`` (the body of ``POST /v1/tasks:batch``,
    items ``{id, spec}`` that name each other in ``spec.dependsOn``), else the one task."""
    data = _read(path)
    if not (isinstance(data, Mapping) and "tasks" in data):
        return [from_dict(data)]
    items = data["tasks"]
    if not isinstance(items, list) or not items:
        raise ValidationError("tasks", "must be a non-empty list of {id, spec}")
    out = []
    for i, item in enumerate(items):
        if not isinstance(item, Mapping) or "spec" not in item:
            raise ValidationError(f"tasks[{i}]", "must be {id: ..., spec: {...}}")
        try:
            out.append(from_dict(item))
        except ValidationError as err:
            raise ValidationError(f"tasks[{i}].{err.field}", err.problem) from None
    return out


def _read(path: Path) -> Any:
    try:
        text = path.read_text()
    except OSError as err:
        raise ValidationError("file", f"cannot read {path}: {err.strerror}") from None
    if path.suffix == ".json":
        data = jsontext.loads(text, "file")
    else:
        try:
            data = yaml.safe_load(text)
        except (ValueError, yaml.YAMLError) as err:
            raise ValidationError("file", f"{path} is not valid YAML: {err}") from None
        except RecursionError:  # the YAML composer recurses once per level
            raise ValidationError("file", f"{path} is nested too deeply") from None
    if jsontext.nested_deeper(data):
        raise ValidationError("file", f"{path} is nested deeper than {jsontext.MAX_DEPTH} levels")
    return data


def from_dict(data: Any) -> tuple[TaskSpec, str]:
    if not isinstance(data, Mapping):
        raise ValidationError("file", "must hold a TaskSpec object")
    if any(str(key)[:1].isupper() for key in data):
        return _from_cube(dict(data))
    task_id = ""
    if "spec" in data:
        task_id = str(data.get("id", ""))
        data = data["spec"]
    try:
        spec = convert.spec_from_dict(data)
    except json_format.ParseError as err:
        raise ValidationError(_field_of(str(err)), str(err)) from None
    return spec, task_id


def _from_cube(data: dict[str, Any]) -> tuple[TaskSpec, str]:
    """A Cube/gokube TaskEvent, or a bare Task; the task keeps its ID."""
    event = data if any(str(k).lower() == "task" for k in data) else {"Task": data}
    try:
        task_id, spec = cube.parse_event(event, cube.dialect_of(event))
    except cube.CubeError as err:
        field, _, problem = err.message.partition(": ")
        if not problem or " " in field:
            field, problem = "Task", err.message
        raise ValidationError(field, problem) from None
    return spec, task_id


def _field_of(text: str) -> str:
    # json_format says e.g. 'Message type "corral.v1.TaskSpec" has no field named "nmae"'
    # or 'Failed to parse resources field: ...'; keep the name for the user.
    named = re.search(r'no field named "([^"]+)"', text) or re.search(
        r"Failed to parse (\w+) field", text
    )
    return f"spec.{named.group(1)}" if named else "spec"
