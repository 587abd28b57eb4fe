"""Conversion between ``corral.v1`` messages and the domain types, one module per resource.

This package, the servicers, the client and the gateway are the only places
that touch ``*_pb2`` (an import-linter contract holds it). The package itself
re-exports the task, node and event converters (``convert.task_from``), which
most edges use; jobs, environments and schedules are their own modules
(``corral.convert.schedules``).
"""

from __future__ import annotations

from corral.convert.events import (
    event_from,
    event_to,
)
from corral.convert.explanations import (
    explanation_from,
    explanation_to,
)
from corral.convert.nodes import (
    node_from,
    node_status_from,
    node_to,
    stats_from,
    stats_to,
)
from corral.convert.scalars import (
    duration,
    enum_from,
    enum_to,
    seconds,
    state_from,
    state_to,
    time_from,
    timestamp,
)
from corral.convert.specs import (
    body_fields,
    body_from,
    disconnect_from,
    disconnect_to,
    health_check_from,
    health_check_to,
    http_call_from,
    http_call_to,
    http_result_from,
    http_result_to,
    ports_from,
    ports_to,
    resources_from,
    resources_to,
    restart_from,
    restart_to,
    spec_bytes,
    spec_from,
    spec_from_bytes,
    spec_from_dict,
    spec_to,
)
from corral.convert.tasks import (
    attempt_from,
    attempt_to,
    health_from,
    health_to,
    status_from,
    status_to,
    task_from,
    task_to,
    update_from,
    update_to,
)

__all__ = [
    "attempt_from",
    "attempt_to",
    "body_fields",
    "body_from",
    "disconnect_from",
    "disconnect_to",
    "duration",
    "enum_from",
    "enum_to",
    "event_from",
    "event_to",
    "explanation_from",
    "explanation_to",
    "health_check_from",
    "health_check_to",
    "health_from",
    "health_to",
    "http_call_from",
    "http_call_to",
    "http_result_from",
    "http_result_to",
    "node_from",
    "node_status_from",
    "node_to",
    "ports_from",
    "ports_to",
    "resources_from",
    "resources_to",
    "restart_from",
    "restart_to",
    "seconds",
    "spec_bytes",
    "spec_from",
    "spec_from_bytes",
    "spec_from_dict",
    "spec_to",
    "state_from",
    "state_to",
    "stats_from",
    "stats_to",
    "status_from",
    "status_to",
    "task_from",
    "task_to",
    "time_from",
    "timestamp",
    "update_from",
    "update_to",
]
