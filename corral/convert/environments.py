"""``corral.v1`` environments <-> ``corral.environments``."""

from __future__ import annotations

from typing import Any

from google.protobuf import json_format

from corral.convert.scalars import state_from, state_to, time_from, timestamp
from corral.convert.specs import ports_from, ports_to
from corral.environments import Environment
from corral.model import TaskId
from corral.v1 import environments_pb2


def environment_to(env: Environment) -> environments_pb2.Environment:
    return environments_pb2.Environment(
        repl_id=env.repl_id,
        language=env.language,
        runtime=env.runtime,
        task_id=env.task_id,
        state=state_to(env.state),
        message=env.message,
        host=env.host,
        ports=ports_to(env.ports),
        created_at=timestamp(env.created_at),
        namespace=env.namespace,
    )


def environment_from(m: environments_pb2.Environment) -> Environment:
    return Environment(
        repl_id=m.repl_id,
        language=m.language,
        runtime=m.runtime,
        task_id=TaskId(m.task_id),
        state=state_from(m.state),
        message=m.message,
        host=m.host,
        ports=ports_from(m.ports),
        created_at=time_from(m.created_at),
        namespace=m.namespace,
    )


def environment_json(env: Environment) -> dict[str, Any]:
    """An environment as proto3 JSON, as ``/v1/environments`` and grpcurl show it."""
    return dict(json_format.MessageToDict(environment_to(env)))
