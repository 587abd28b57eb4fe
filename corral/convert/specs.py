"""Task specs and their parts (resources, ports, restart policy, health check, http call).

``spec_from`` only converts; ``corral.validation`` checks.
"""

from __future__ import annotations

import json
from typing import Any

from google.protobuf import json_format

from corral import jsontext
from corral.convert.scalars import (
    duration,
    enum_from,
    enum_to,
    map_from,
    seconds,
)
from corral.model import (
    Dependency,
    DependencyCondition,
    Disconnect,
    ExecProbe,
    FakeSpec,
    HealthCheck,
    HttpCall,
    HttpProbe,
    HttpResult,
    KubernetesSpec,
    PortMapping,
    Resources,
    RestartMode,
    RestartPolicy,
    TaskSpec,
    TcpProbe,
)
from corral.v1 import types_pb2


def resources_from(m: types_pb2.Resources) -> Resources:
    return Resources(m.cpu, m.memory_bytes, m.disk_bytes)


def resources_to(r: Resources) -> types_pb2.Resources:
    return types_pb2.Resources(cpu=r.cpu, memory_bytes=r.memory_bytes, disk_bytes=r.disk_bytes)


def ports_from(ms: Any) -> tuple[PortMapping, ...]:
    return tuple(
        PortMapping(p.container_port, p.host_port, p.protocol or "tcp", p.host_ip) for p in ms
    )


def ports_to(ports: tuple[PortMapping, ...]) -> list[types_pb2.PortMapping]:
    return [
        types_pb2.PortMapping(
            container_port=p.container_port,
            host_port=p.host_port,
            protocol=p.protocol,
            host_ip=p.host_ip,
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
        headers=map_from(m.headers),
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


_CONDITION = "DEPENDENCY_CONDITION_"
# What ``resources_from``, ``restart_from`` and ``disconnect_from`` make of an empty message.
_NO_RESOURCES = Resources()
_NEVER_RESTART = RestartPolicy()
_NO_POLICY = Disconnect()


def spec_from(m: types_pb2.TaskSpec) -> TaskSpec:
    return TaskSpec(
        name=m.name,
        runtime=m.runtime or "process",
        image=m.image,
        command=tuple(m.command),
        env=map_from(m.env),
        working_dir=m.working_dir,
        # An absent message field takes the model's default without a conversion: a
        # submit converts every spec, and most leave these out.
        resources=resources_from(m.resources) if m.HasField("resources") else _NO_RESOURCES,
        ports=ports_from(m.ports) if m.ports else (),
        restart_policy=(
            restart_from(m.restart_policy) if m.HasField("restart_policy") else _NEVER_RESTART
        ),
        health_check=health_check_from(m.health_check) if m.HasField("health_check") else None,
        labels=map_from(m.labels),
        constraints=map_from(m.constraints),
        network=m.network,
        http=http_call_from(m.http) if m.HasField("http") else None,
        kubernetes=(
            KubernetesSpec(
                namespace=m.kubernetes.namespace,
                manifests=tuple(
                    jsontext.loads(s, f"spec.kubernetes.manifests[{i}]")
                    for i, s in enumerate(m.kubernetes.manifests)
                ),
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
        deadline=seconds(m.deadline) if m.HasField("deadline") else 0.0,
        disconnect=disconnect_from(m.disconnect) if m.HasField("disconnect") else _NO_POLICY,
        depends_on=()
        if not m.depends_on
        else tuple(
            Dependency(
                d.task_id,
                enum_from(
                    types_pb2.DependencyCondition,
                    d.condition,
                    DependencyCondition,
                    _CONDITION,
                    DependencyCondition.SUCCEEDED,
                ),
            )
            for d in m.depends_on
        ),
        secret_env=map_from(m.secret_env),
        namespace=m.namespace,
    )


def disconnect_from(m: types_pb2.DisconnectPolicy) -> Disconnect:
    return Disconnect(
        stop_after=seconds(m.stop_after) if m.HasField("stop_after") else None,
        replace=m.replace if m.HasField("replace") else None,
    )


def disconnect_to(d: Disconnect) -> types_pb2.DisconnectPolicy:
    out = types_pb2.DisconnectPolicy()
    if d.stop_after is not None:
        out.stop_after.CopyFrom(duration(d.stop_after))
    if d.replace is not None:
        out.replace = d.replace
    return out


def spec_to(s: TaskSpec, *, secrets: bool = False) -> types_pb2.TaskSpec:
    """The spec's message; ``secret_env`` only with ``secrets`` (a submit, an Assign),
    never in anything a read returns."""
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
        depends_on=[
            types_pb2.TaskDependency(
                task_id=d.task_id,
                condition=enum_to(
                    types_pb2.DependencyCondition, d.condition, "DEPENDENCY_CONDITION_"
                ),
            )
            for d in s.depends_on
        ],
        namespace=s.namespace,
    )
    if secrets and s.secret_env:
        out.secret_env.update(s.secret_env)
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
    if s.disconnect != Disconnect():
        out.disconnect.CopyFrom(disconnect_to(s.disconnect))
    if s.fake is not None:
        out.fake.CopyFrom(
            types_pb2.FakeSpec(
                duration=duration(s.fake.duration),
                exit_code=s.fake.exit_code,
                failure_rate=s.fake.failure_rate,
            )
        )
    return out


def spec_from_dict(data: Any) -> TaskSpec:
    """A spec written as the proto's JSON mapping (spec files, schedule files).

    Raises ``google.protobuf.json_format.ParseError`` naming the field it could not read.
    """
    return spec_from(json_format.ParseDict(data, types_pb2.TaskSpec()))


def spec_bytes(s: TaskSpec) -> bytes:
    """The wire encoding of a spec: stable and versioned, so fit to keep on disk."""
    return bytes(spec_to(s).SerializeToString())


def spec_from_bytes(data: bytes) -> TaskSpec:
    return spec_from(types_pb2.TaskSpec.FromString(data))
