"""Conversion between ``corral.v1`` messages and the domain types.

This module and the servicers and client are the only places that touch
``*_pb2``. ``spec_from_proto`` only converts; ``corral.validation`` checks.
Enum values map by name, so the proto's ``TASK_STATE_RUNNING`` is
``TaskState.RUNNING``; an unset message field becomes the domain default.
"""

from __future__ import annotations

import enum
import json
from typing import Any, TypeVar, cast

from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp

from corral.explanations import Explanation, NodeFit, Reason
from corral.model import (
    Attempt,
    Event,
    ExecProbe,
    FakeSpec,
    Health,
    HealthCheck,
    HttpCall,
    HttpProbe,
    HttpResult,
    KubernetesSpec,
    Node,
    NodeId,
    NodeStats,
    NodeStatus,
    PortMapping,
    Resources,
    RestartMode,
    RestartPolicy,
    Task,
    TaskId,
    TaskSpec,
    TaskState,
    TaskStatus,
    TaskUpdate,
    TcpProbe,
)
from corral.v1 import manager_pb2, types_pb2

E = TypeVar("E", bound=enum.Enum)


# -- scalars -----------------------------------------------------------------


def seconds(d: Duration) -> float:
    return d.seconds + d.nanos / 1e9


def duration(value: float) -> Duration:
    out = Duration()
    out.FromNanoseconds(round(value * 1e9))
    return out


def time_from(ts: Timestamp) -> float | None:
    if ts.seconds == 0 and ts.nanos == 0:
        return None
    return ts.seconds + ts.nanos / 1e9


def timestamp(value: float | None) -> Timestamp | None:
    if value is None:
        return None
    # What Timestamp.FromNanoseconds does, in one constructor call (a hot path).
    nanos = round(value * 1e9)
    return Timestamp(seconds=nanos // 1_000_000_000, nanos=nanos % 1_000_000_000)


def enum_from(proto_enum: Any, number: int, domain: type[E], prefix: str, default: E) -> E:
    """Proto enum number -> domain enum member by name ('TASK_STATE_RUNNING' -> RUNNING)."""
    if number == 0:
        return default
    key = (domain, prefix, number)
    member = _ENUM_MEMBERS.get(key)
    if member is None:
        # Unknown numbers and names raise here, and are never cached.
        member = _ENUM_MEMBERS[key] = domain[proto_enum.Name(number).removeprefix(prefix)]
    return cast(E, member)


def enum_to(proto_enum: Any, member: enum.Enum, prefix: str) -> Any:
    # Any: each proto enum has its own ValueType, which mypy-protobuf keeps distinct.
    key = (member, prefix)
    number = _ENUM_NUMBERS.get(key)
    if number is None:
        number = _ENUM_NUMBERS[key] = proto_enum.Value(prefix + member.name)
    return number


# Domain member (with its proto prefix) -> proto number; enums are few, lookups many.
_ENUM_NUMBERS: dict[tuple[enum.Enum, str], Any] = {}
# And back: (domain enum, proto prefix, proto number) -> domain member.
_ENUM_MEMBERS: dict[tuple[type[enum.Enum], str, int], enum.Enum] = {}


def state_from(number: int) -> TaskState:
    return enum_from(types_pb2.TaskState, number, TaskState, "TASK_STATE_", TaskState.PENDING)


def state_to(state: TaskState) -> Any:
    return enum_to(types_pb2.TaskState, state, "TASK_STATE_")


# -- spec --------------------------------------------------------------------


def resources_from(m: types_pb2.Resources) -> Resources:
    return Resources(m.cpu, m.memory_bytes, m.disk_bytes)


def resources_to(r: Resources) -> types_pb2.Resources:
    return types_pb2.Resources(cpu=r.cpu, memory_bytes=r.memory_bytes, disk_bytes=r.disk_bytes)


def ports_from(ms: Any) -> tuple[PortMapping, ...]:
    return tuple(PortMapping(p.container_port, p.host_port, p.protocol or "tcp") for p in ms)


def ports_to(ports: tuple[PortMapping, ...]) -> list[types_pb2.PortMapping]:
    return [
        types_pb2.PortMapping(
            container_port=p.container_port, host_port=p.host_port, protocol=p.protocol
        )
        for p in ports
    ]


def restart_from(m: types_pb2.RestartPolicy) -> RestartPolicy:
    default = RestartPolicy()
    return RestartPolicy(
        mode=enum_from(
            types_pb2.RestartMode, m.mode, RestartMode, "RESTART_MODE_", RestartMode.NEVER
        ),
        max_attempts=m.max_attempts,
        backoff=seconds(m.backoff) if m.HasField("backoff") else default.backoff,
        max_backoff=seconds(m.max_backoff) if m.HasField("max_backoff") else default.max_backoff,
    )


def restart_to(p: RestartPolicy) -> types_pb2.RestartPolicy:
    return types_pb2.RestartPolicy(
        mode=enum_to(types_pb2.RestartMode, p.mode, "RESTART_MODE_"),
        max_attempts=p.max_attempts,
        backoff=duration(p.backoff),
        max_backoff=duration(p.max_backoff),
    )


def health_check_from(m: types_pb2.HealthCheck) -> HealthCheck | None:
    which = m.WhichOneof("probe")
    if which is None:
        return None
    probe: HttpProbe | TcpProbe | ExecProbe
    if which == "http":
        probe = HttpProbe(path=m.http.path or "/", port=m.http.port)
    elif which == "tcp":
        probe = TcpProbe(port=m.tcp.port)
    else:
        probe = ExecProbe(command=tuple(m.exec.command))
    default = HealthCheck(probe)
    return HealthCheck(
        probe=probe,
        interval=seconds(m.interval) if m.HasField("interval") else default.interval,
        timeout=seconds(m.timeout) if m.HasField("timeout") else default.timeout,
        failure_threshold=m.failure_threshold or default.failure_threshold,
        initial_delay=seconds(m.initial_delay),
    )


def health_check_to(h: HealthCheck) -> types_pb2.HealthCheck:
    out = types_pb2.HealthCheck(
        interval=duration(h.interval),
        timeout=duration(h.timeout),
        failure_threshold=h.failure_threshold,
        initial_delay=duration(h.initial_delay),
    )
    if isinstance(h.probe, HttpProbe):
        out.http.CopyFrom(types_pb2.HttpProbe(path=h.probe.path, port=h.probe.port))
    elif isinstance(h.probe, TcpProbe):
        out.tcp.CopyFrom(types_pb2.TcpProbe(port=h.probe.port))
    else:
        out.exec.CopyFrom(types_pb2.ExecProbe(command=list(h.probe.command)))
    return out


def http_call_from(m: types_pb2.HttpCall) -> HttpCall:
    return HttpCall(
        url=m.url,
        method=(m.method or "GET").upper(),
        headers=dict(m.headers),
        body=m.body,
        timeout=seconds(m.timeout) if m.HasField("timeout") else 10.0,
        expected_status=tuple(m.expected_status),
    )


def http_call_to(c: HttpCall) -> types_pb2.HttpCall:
    return types_pb2.HttpCall(
        method=c.method,
        url=c.url,
        headers=dict(c.headers),
        body=c.body,
        timeout=duration(c.timeout),
        expected_status=list(c.expected_status),
    )


def body_fields(body: bytes) -> dict[str, Any]:
    """A response body as ``body_text`` when it is UTF-8 (JSON shows it as text), else ``body``.

    A body cut at the runtime's bound may end inside a character: that partial
    character is dropped rather than making the whole body binary.
    """
    try:
        return {"body_text": body.decode()}
    except UnicodeDecodeError as err:
        if err.reason == "unexpected end of data" and err.start >= len(body) - 3:
            return {"body_text": body[: err.start].decode()}
        return {"body": body}


def body_from(body: bytes, body_text: str) -> bytes:
    return body_text.encode() if body_text else body


def http_result_from(m: types_pb2.HttpResult) -> HttpResult:
    body = body_from(m.body, m.body_text)
    return HttpResult(m.status_code, m.latency_ms, body, m.body_truncated, m.error)


def http_result_to(r: HttpResult) -> types_pb2.HttpResult:
    return types_pb2.HttpResult(
        status_code=r.status_code,
        latency_ms=r.latency_ms,
        body_truncated=r.body_truncated,
        error=r.error,
        **body_fields(r.body),
    )


def spec_from(m: types_pb2.TaskSpec) -> TaskSpec:
    return TaskSpec(
        name=m.name,
        runtime=m.runtime or "process",
        image=m.image,
        command=tuple(m.command),
        env=dict(m.env),
        working_dir=m.working_dir,
        resources=resources_from(m.resources),
        ports=ports_from(m.ports),
        restart_policy=restart_from(m.restart_policy),
        health_check=health_check_from(m.health_check) if m.HasField("health_check") else None,
        labels=dict(m.labels),
        constraints=dict(m.constraints),
        network=m.network,
        http=http_call_from(m.http) if m.HasField("http") else None,
        kubernetes=(
            KubernetesSpec(
                namespace=m.kubernetes.namespace,
                manifests=tuple(json.loads(s) for s in m.kubernetes.manifests),
            )
            if m.HasField("kubernetes")
            else None
        ),
        fake=(
            FakeSpec(seconds(m.fake.duration), m.fake.exit_code, m.fake.failure_rate)
            if m.HasField("fake")
            else None
        ),
        stop_grace=seconds(m.stop_grace) if m.HasField("stop_grace") else 10.0,
        deadline=seconds(m.deadline),
    )


def spec_to(s: TaskSpec) -> types_pb2.TaskSpec:
    out = types_pb2.TaskSpec(
        name=s.name,
        runtime=s.runtime,
        image=s.image,
        command=list(s.command),
        env=dict(s.env),
        working_dir=s.working_dir,
        resources=resources_to(s.resources),
        ports=ports_to(s.ports),
        restart_policy=restart_to(s.restart_policy),
        labels=dict(s.labels),
        constraints=dict(s.constraints),
        network=s.network,
        stop_grace=duration(s.stop_grace),
        deadline=duration(s.deadline),
    )
    if s.health_check is not None:
        out.health_check.CopyFrom(health_check_to(s.health_check))
    if s.http is not None:
        out.http.CopyFrom(http_call_to(s.http))
    if s.kubernetes is not None:
        out.kubernetes.CopyFrom(
            types_pb2.KubernetesSpec(
                namespace=s.kubernetes.namespace,
                manifests=[json.dumps(d, sort_keys=True) for d in s.kubernetes.manifests],
            )
        )
    if s.fake is not None:
        out.fake.CopyFrom(
            types_pb2.FakeSpec(
                duration=duration(s.fake.duration),
                exit_code=s.fake.exit_code,
                failure_rate=s.fake.failure_rate,
            )
        )
    return out


# -- status, task, attempt -----------------------------------------------------


def health_from(number: int) -> Health:
    return enum_from(types_pb2.Health, number, Health, "HEALTH_", Health.UNKNOWN)


def health_to(h: Health) -> Any:
    return 0 if h is Health.UNKNOWN else enum_to(types_pb2.Health, h, "HEALTH_")


def status_from(m: types_pb2.TaskStatus) -> TaskStatus:
    return TaskStatus(
        state=state_from(m.state),
        node_id=m.node_id,
        generation=m.generation,
        attempts=m.attempts,
        exit_code=m.exit_code if m.HasField("exit_code") else None,
        message=m.message,
        restart_count=m.restart_count,
        created_at=time_from(m.created_at),
        scheduled_at=time_from(m.scheduled_at),
        started_at=time_from(m.started_at),
        finished_at=time_from(m.finished_at),
        updated_at=time_from(m.updated_at),
        ports=ports_from(m.ports),
        health=health_from(m.health),
        result=http_result_from(m.result) if m.HasField("result") else None,
        next_attempt_at=time_from(m.next_attempt_at),
    )


def status_to(s: TaskStatus) -> types_pb2.TaskStatus:
    out = types_pb2.TaskStatus(
        state=state_to(s.state),
        node_id=s.node_id,
        generation=s.generation,
        attempts=s.attempts,
        exit_code=s.exit_code,
        message=s.message,
        restart_count=s.restart_count,
        health=health_to(s.health),
    )
    # Times are set in place: a Timestamp built apart is copied into the message,
    # which made up half of this conversion (the manager's hottest).
    for name in _STATUS_TIMES:
        value = getattr(s, name)
        if value is not None:
            nanos = round(value * 1e9)
            field = getattr(out, name)
            field.seconds, field.nanos = nanos // 1_000_000_000, nanos % 1_000_000_000
    if s.ports:
        out.ports.extend(ports_to(s.ports))
    if s.result is not None:
        out.result.CopyFrom(http_result_to(s.result))
    return out


_STATUS_TIMES = (
    "created_at",
    "scheduled_at",
    "started_at",
    "finished_at",
    "updated_at",
    "next_attempt_at",
)


def task_from(m: types_pb2.Task) -> Task:
    return Task(id=TaskId(m.id), spec=spec_from(m.spec), status=status_from(m.status))


def task_to(t: Task) -> types_pb2.Task:
    return types_pb2.Task(id=t.id, spec=spec_to(t.spec), status=status_to(t.status))


def attempt_from(m: types_pb2.Attempt) -> Attempt:
    return Attempt(
        task_id=TaskId(m.task_id),
        generation=m.generation,
        node_id=m.node_id,
        state=state_from(m.state),
        exit_code=m.exit_code if m.HasField("exit_code") else None,
        message=m.message,
        created_at=time_from(m.created_at),
        finished_at=time_from(m.finished_at),
    )


def attempt_to(a: Attempt) -> types_pb2.Attempt:
    return types_pb2.Attempt(
        task_id=a.task_id,
        generation=a.generation,
        node_id=a.node_id,
        state=state_to(a.state),
        exit_code=a.exit_code,
        message=a.message,
        created_at=timestamp(a.created_at),
        finished_at=timestamp(a.finished_at),
    )


def update_from(m: manager_pb2.TaskUpdate) -> TaskUpdate:
    return TaskUpdate(
        task_id=TaskId(m.task_id),
        generation=m.generation,
        state=state_from(m.state),
        exit_code=m.exit_code if m.HasField("exit_code") else None,
        message=m.message,
        time=time_from(m.time),
        ports=ports_from(m.ports),
        health=health_from(m.health),
        result=http_result_from(m.result) if m.HasField("result") else None,
    )


def update_to(u: TaskUpdate) -> manager_pb2.TaskUpdate:
    out = manager_pb2.TaskUpdate(
        task_id=u.task_id,
        generation=u.generation,
        state=state_to(u.state),
        exit_code=u.exit_code,
        message=u.message,
        time=timestamp(u.time),
        ports=ports_to(u.ports),
        health=health_to(u.health),
    )
    if u.result is not None:
        out.result.CopyFrom(http_result_to(u.result))
    return out


# -- nodes and events --------------------------------------------------------


def stats_from(m: types_pb2.NodeStats) -> NodeStats:
    return NodeStats(
        cpu_percent=m.cpu_percent,
        memory_used_bytes=m.memory_used_bytes,
        memory_total_bytes=m.memory_total_bytes,
        disk_used_bytes=m.disk_used_bytes,
        disk_total_bytes=m.disk_total_bytes,
        load1=m.load1,
        load5=m.load5,
        load15=m.load15,
        task_count=m.task_count,
        container_memory_bytes=m.container_memory_bytes,
        container_cpu=m.container_cpu,
    )


def stats_to(s: NodeStats) -> types_pb2.NodeStats:
    return types_pb2.NodeStats(
        cpu_percent=s.cpu_percent,
        memory_used_bytes=s.memory_used_bytes,
        memory_total_bytes=s.memory_total_bytes,
        disk_used_bytes=s.disk_used_bytes,
        disk_total_bytes=s.disk_total_bytes,
        load1=s.load1,
        load5=s.load5,
        load15=s.load15,
        task_count=s.task_count,
        container_memory_bytes=s.container_memory_bytes,
        container_cpu=s.container_cpu,
    )


def node_status_from(number: int) -> NodeStatus:
    return enum_from(types_pb2.NodeStatus, number, NodeStatus, "NODE_STATUS_", NodeStatus.READY)


def node_from(m: types_pb2.Node) -> Node:
    return Node(
        id=NodeId(m.id),
        name=m.name,
        address=m.address,
        labels=dict(m.labels),
        capacity=resources_from(m.capacity),
        allocated=resources_from(m.allocated),
        stats=stats_from(m.stats),
        runtimes=tuple(m.runtimes),
        status=node_status_from(m.status),
        last_heartbeat=time_from(m.last_heartbeat),
        registered_at=time_from(m.registered_at),
        task_count=m.task_count,
    )


def node_to(n: Node) -> types_pb2.Node:
    return types_pb2.Node(
        id=n.id,
        name=n.name,
        address=n.address,
        labels=dict(n.labels),
        capacity=resources_to(n.capacity),
        allocated=resources_to(n.allocated),
        stats=stats_to(n.stats),
        runtimes=list(n.runtimes),
        status=enum_to(types_pb2.NodeStatus, n.status, "NODE_STATUS_"),
        last_heartbeat=timestamp(n.last_heartbeat),
        registered_at=timestamp(n.registered_at),
        task_count=n.task_count,
    )


def event_from(m: types_pb2.Event) -> Event:
    return Event(
        index=m.index,
        time=time_from(m.time) or 0.0,
        kind=m.kind,
        task=task_from(m.task) if m.HasField("task") else None,
        node=node_from(m.node) if m.HasField("node") else None,
        message=m.message,
    )


def event_to(e: Event) -> types_pb2.Event:
    out = types_pb2.Event(index=e.index, time=timestamp(e.time), kind=e.kind, message=e.message)
    if e.task is not None:
        out.task.CopyFrom(task_to(e.task))
    if e.node is not None:
        out.node.CopyFrom(node_to(e.node))
    return out


def explanation_to(e: Explanation) -> manager_pb2.ExplainTaskResponse:
    return manager_pb2.ExplainTaskResponse(
        task_id=e.task_id,
        state=state_to(e.state),
        message=e.message,
        nodes=[
            manager_pb2.NodeFit(
                node_id=n.node_id,
                node_name=n.node_name,
                status=enum_to(types_pb2.NodeStatus, n.status, "NODE_STATUS_"),
                fits=n.fits,
                reasons=[
                    manager_pb2.UnfitReason(
                        kind=r.kind,
                        message=r.message,
                        label=r.label,
                        wanted=r.wanted,
                        actual=r.actual,
                    )
                    for r in n.reasons
                ],
                free=resources_to(n.free),
                capacity=resources_to(n.capacity),
            )
            for n in e.nodes
        ],
        chosen_node_id=e.chosen_node_id,
        chosen_node_name=e.chosen_node_name,
        summary=e.summary,
    )


def explanation_from(m: manager_pb2.ExplainTaskResponse) -> Explanation:
    return Explanation(
        task_id=TaskId(m.task_id),
        state=state_from(m.state),
        message=m.message,
        nodes=tuple(
            NodeFit(
                node_id=NodeId(n.node_id),
                node_name=n.node_name,
                status=node_status_from(n.status),
                reasons=tuple(
                    Reason(r.kind, r.message, r.label, r.wanted, r.actual) for r in n.reasons
                ),
                free=resources_from(n.free),
                capacity=resources_from(n.capacity),
            )
            for n in m.nodes
        ),
        chosen_node_id=m.chosen_node_id,
        chosen_node_name=m.chosen_node_name,
        summary=m.summary,
    )
