"""``corral run``'s spec flags: how ``--memory 512Mi``, ``--env K=V``,
``--port 18080:8080`` or ``--health-http 8080/healthz`` become a ``TaskSpec``.

Flags left out keep the value from ``-f FILE`` (or the default), so a file can
be the base and the command line the override. Local parse errors name the
spec field the server would name (``spec.resources.memory_bytes``).
"""

from __future__ import annotations

import dataclasses
import shlex

from corral.cli.options import parse_pairs, parse_size
from corral.errors import ValidationError
from corral.model import (
    Dependency,
    DependencyCondition,
    ExecProbe,
    HealthCheck,
    HttpProbe,
    PortMapping,
    Resources,
    RestartMode,
    RestartPolicy,
    TaskSpec,
    TcpProbe,
)


@dataclasses.dataclass(frozen=True)
class RunFlags:
    """The spec flags of ``corral run``; None means "not given" (a file's value stays)."""

    name: str | None = None
    runtime: str | None = None
    image: str | None = None
    env: list[str] | None = None
    secret_env: list[str] | None = None
    namespace: str | None = None
    workdir: str | None = None
    cpu: float | None = None
    memory: str | None = None
    disk: str | None = None
    port: list[str] | None = None
    restart: str | None = None
    max_attempts: int | None = None
    label: list[str] | None = None
    constraint: list[str] | None = None
    health_http: str | None = None
    health_tcp: int | None = None
    health_cmd: str | None = None
    health_interval: float | None = None
    command: list[str] | None = None
    # Task ids (already resolved) to run after, each "ID" or "ID=finished".
    after: list[str] | None = None


def _secret_pairs(items: list[str]) -> dict[str, str]:
    """Like ``parse_pairs``, but an error never repeats what was typed (it may be a secret)."""
    out: dict[str, str] = {}
    for i, item in enumerate(items):
        key, found, value = item.partition("=")
        if not found or not key:
            raise ValidationError(f"spec.secret_env[{i}]", "is not KEY=VALUE (value not shown)")
        out[key] = value
    return out


def build_spec(flags: RunFlags, base: TaskSpec | None = None) -> TaskSpec:
    """A spec from a file (``base``) with the flags given on top."""
    spec = base or TaskSpec(name="")
    changes: dict[str, object] = {}
    for attr, field in (("name", "name"), ("runtime", "runtime"), ("image", "image")):
        if getattr(flags, attr) is not None:
            changes[field] = getattr(flags, attr)
    if flags.workdir is not None:
        changes["working_dir"] = flags.workdir
    if flags.command:
        changes["command"] = tuple(flags.command)
    if flags.env:
        changes["env"] = {**spec.env, **parse_pairs(flags.env, "spec.env")}
    if flags.secret_env:
        changes["secret_env"] = {**spec.secret_env, **_secret_pairs(flags.secret_env)}
    if flags.namespace is not None:
        changes["namespace"] = flags.namespace
    if flags.label:
        changes["labels"] = {**spec.labels, **parse_pairs(flags.label, "spec.labels")}
    if flags.constraint:
        pairs = parse_pairs(flags.constraint, "spec.constraints")
        changes["constraints"] = {**spec.constraints, **pairs}
    if flags.port:
        changes["ports"] = tuple(_port(p, i) for i, p in enumerate(flags.port))
    changes["resources"] = _resources(flags, spec.resources)
    changes["restart_policy"] = _restart(flags, spec.restart_policy)
    health = _health(flags, spec.health_check)
    if health is not None:
        changes["health_check"] = health
    if flags.after:
        changes["depends_on"] = spec.depends_on + tuple(
            after(a, i) for i, a in enumerate(flags.after)
        )
    return dataclasses.replace(spec, **changes)  # type: ignore[arg-type]


def after(text: str, i: int = 0) -> Dependency:
    """``--after ID`` (it must succeed) or ``--after ID=finished`` (it must end, however)."""
    task_id, sep, condition = text.partition("=")
    if not sep:
        return Dependency(task_id)
    try:
        return Dependency(task_id, DependencyCondition(condition))
    except ValueError:
        raise ValidationError(
            f"spec.depends_on[{i}].condition", f"{condition!r} is not succeeded or finished"
        ) from None


def _resources(flags: RunFlags, base: Resources) -> Resources:
    return Resources(
        cpu=base.cpu if flags.cpu is None else flags.cpu,
        memory_bytes=(
            base.memory_bytes
            if flags.memory is None
            else parse_size(flags.memory, "spec.resources.memory_bytes")
        ),
        disk_bytes=(
            base.disk_bytes
            if flags.disk is None
            else parse_size(flags.disk, "spec.resources.disk_bytes")
        ),
    )


def _restart(flags: RunFlags, base: RestartPolicy) -> RestartPolicy:
    mode = base.mode
    if flags.restart is not None:
        try:
            mode = RestartMode(flags.restart)
        except ValueError:
            raise ValidationError(
                "spec.restart_policy.mode", "must be never, on-failure or always"
            ) from None
    attempts = base.max_attempts if flags.max_attempts is None else flags.max_attempts
    return dataclasses.replace(base, mode=mode, max_attempts=attempts)


def _port(text: str, i: int) -> PortMapping:
    """``8080`` (container port), ``18080:8080`` (host:container), ``53/udp``."""
    body, _, protocol = text.partition("/")
    host, _, container = body.rpartition(":")
    try:
        return PortMapping(int(container), int(host or 0), protocol or "tcp")
    except ValueError:
        raise ValidationError(f"spec.ports[{i}]", f"{text!r} is not [HOST:]PORT[/PROTO]") from None


def _health(flags: RunFlags, base: HealthCheck | None) -> HealthCheck | None:
    probe: HttpProbe | TcpProbe | ExecProbe | None = None
    if flags.health_http is not None:
        port, _, path = flags.health_http.partition("/")
        try:
            probe = HttpProbe(path="/" + path, port=int(port))
        except ValueError:
            raise ValidationError(
                "spec.health_check.http", f"{flags.health_http!r} is not PORT[/PATH]"
            ) from None
    elif flags.health_tcp is not None:
        probe = TcpProbe(port=flags.health_tcp)
    elif flags.health_cmd is not None:
        probe = ExecProbe(command=tuple(shlex.split(flags.health_cmd)))
    if probe is None and base is None:
        return None
    check = base or HealthCheck(probe=probe or ExecProbe())
    if probe is not None:
        check = dataclasses.replace(check, probe=probe)
    if flags.health_interval is not None:
        check = dataclasses.replace(check, interval=flags.health_interval)
    return check
