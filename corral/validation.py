"""Validation of user input, shared by every interface.

Every check raises ``ValidationError`` naming the field by its dotted path
(``spec.command[2]``), so the same message reaches grpcurl, the client, the CLI
and REST. Validation happens before anything is stored.
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Mapping, Sequence
from urllib.parse import urlsplit

from corral.errors import ValidationError
from corral.model import (
    RUNTIMES,
    Dependency,
    ExecProbe,
    HealthCheck,
    HttpCall,
    HttpProbe,
    PortMapping,
    Resources,
    RestartPolicy,
    TaskSpec,
    TcpProbe,
)

_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", re.ASCII)
# Label keys as Kubernetes allows them: optional DNS prefix, then a name.
_LABEL_KEY = re.compile(
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?",
    re.ASCII,
)
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*", re.ASCII)
# The distribution/reference grammar: [host[:port]/]path[:tag][@digest].
_IMAGE = re.compile(
    r"^(?:(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
    r"(?:\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))*(?::[0-9]+)?/)?"
    r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*"
    r"(?::[\w][\w.-]{0,127})?(?:@[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,})?",
    re.ASCII,
)
_HTTP_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})

MAX_NAME = 63
MAX_ARGS = 1024
MAX_ARG_BYTES = 128 * 1024
MAX_MAP_ENTRIES = 256
MAX_VALUE_BYTES = 32 * 1024
MAX_CPU = 1024.0
MAX_BYTES = 1 << 50  # 1 PiB
MAX_DURATION = 366 * 24 * 3600.0
MAX_ATTEMPTS = 10_000
MAX_PORTS = 64
MAX_HTTP_BODY = 1 << 20


def check_name(value: str, field: str = "name") -> str:
    """An RFC 1123 label: lowercase alphanumerics and '-', at most 63 characters."""
    if not value:
        raise ValidationError(field, "is required")
    if len(value) > MAX_NAME or not _LABEL.fullmatch(value):
        raise ValidationError(
            field,
            f"{value!r} is not an RFC 1123 label (lowercase letters, digits and '-', "
            "starting and ending with a letter or digit, at most 63 characters)",
        )
    return value


def check_text(value: str, field: str, *, limit: int = MAX_VALUE_BYTES) -> str:
    if "\x00" in value:
        raise ValidationError(field, "contains a NUL byte")
    if len(value.encode()) > limit:
        raise ValidationError(field, f"is longer than {limit} bytes")
    return value


def check_seconds(value: float, field: str, *, minimum: float = 0.0) -> float:
    if not math.isfinite(value) or value < minimum or value > MAX_DURATION:
        raise ValidationError(field, f"must be a duration between {minimum}s and one year")
    return value


def check_port(value: int, field: str, *, allow_zero: bool = False) -> int:
    if not (allow_zero and value == 0) and not 1 <= value <= 65535:
        raise ValidationError(field, f"must be a port between 1 and 65535, got {value}")
    return value


def check_image(value: str, field: str = "image") -> str:
    if len(value) > 512 or not _IMAGE.fullmatch(value):
        raise ValidationError(field, f"{value!r} is not a valid image reference")
    return value


def check_url(value: str, field: str) -> str:
    check_text(value, field, limit=8192)
    if any(c.isspace() or not c.isprintable() for c in value):
        raise ValidationError(field, "contains whitespace or control characters")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https"):
        raise ValidationError(field, f"must be an http(s) URL, got {value!r}")
    if not parts.hostname:
        raise ValidationError(field, f"has no host: {value!r}")
    if not parts.hostname.isascii():
        # Look-alike letters (a Cyrillic a for a Latin one) must not pass for another host.
        raise ValidationError(field, "host must be ASCII (write it in its xn-- punycode form)")
    return value


def check_argv(argv: tuple[str, ...], field: str, *, required: bool) -> tuple[str, ...]:
    if required and not argv:
        raise ValidationError(field, "must not be empty")
    if len(argv) > MAX_ARGS:
        raise ValidationError(field, f"has more than {MAX_ARGS} arguments")
    total = 0
    for i, arg in enumerate(argv):
        check_text(arg, f"{field}[{i}]", limit=MAX_ARG_BYTES)
        total += len(arg)
    if total > MAX_ARG_BYTES:
        raise ValidationError(field, f"is longer than {MAX_ARG_BYTES} bytes in all")
    if required and not argv[0]:
        raise ValidationError(f"{field}[0]", "must name a program")
    return argv


def check_labels(labels: Mapping[str, str], field: str) -> None:
    if len(labels) > MAX_MAP_ENTRIES:
        raise ValidationError(field, f"has more than {MAX_MAP_ENTRIES} entries")
    for key, value in labels.items():
        if len(key) > 253 or not _LABEL_KEY.fullmatch(key):
            raise ValidationError(f"{field}[{key!r}]", "is not a valid label key")
        check_text(value, f"{field}[{key!r}]", limit=MAX_NAME)


def check_env(env: Mapping[str, str], field: str) -> None:
    if len(env) > MAX_MAP_ENTRIES:
        raise ValidationError(field, f"has more than {MAX_MAP_ENTRIES} entries")
    for key, value in env.items():
        if not _ENV_NAME.fullmatch(key):
            raise ValidationError(f"{field}[{key!r}]", "is not a valid variable name")
        check_text(value, f"{field}[{key!r}]")


def check_resources(res: Resources, field: str) -> None:
    if not math.isfinite(res.cpu) or res.cpu < 0 or res.cpu > MAX_CPU:
        raise ValidationError(f"{field}.cpu", f"must be between 0 and {MAX_CPU} cores")
    for name in ("memory_bytes", "disk_bytes"):
        value = getattr(res, name)
        if value < 0 or value > MAX_BYTES:
            raise ValidationError(f"{field}.{name}", "must be between 0 and 1 PiB")


def check_ports(ports: tuple[PortMapping, ...], field: str) -> None:
    if len(ports) > MAX_PORTS:
        raise ValidationError(field, f"has more than {MAX_PORTS} entries")
    for i, port in enumerate(ports):
        check_port(port.container_port, f"{field}[{i}].container_port")
        check_port(port.host_port, f"{field}[{i}].host_port", allow_zero=True)
        if port.protocol not in ("tcp", "udp"):
            raise ValidationError(f"{field}[{i}].protocol", "must be tcp or udp")
        if port.host_ip:
            try:
                ipaddress.ip_address(port.host_ip)
            except ValueError:
                raise ValidationError(
                    f"{field}[{i}].host_ip", f"{port.host_ip!r} is not an IP address"
                ) from None


def check_restart(policy: RestartPolicy, field: str) -> None:
    if not 0 <= policy.max_attempts <= MAX_ATTEMPTS:
        raise ValidationError(f"{field}.max_attempts", f"must be at most {MAX_ATTEMPTS}")
    check_seconds(policy.backoff, f"{field}.backoff")
    check_seconds(policy.max_backoff, f"{field}.max_backoff")


def check_health(check: HealthCheck, field: str) -> None:
    check_seconds(check.interval, f"{field}.interval", minimum=0.05)
    check_seconds(check.timeout, f"{field}.timeout", minimum=0.01)
    check_seconds(check.initial_delay, f"{field}.initial_delay")
    if not 1 <= check.failure_threshold <= 1000:
        raise ValidationError(f"{field}.failure_threshold", "must be between 1 and 1000")
    probe = check.probe
    if isinstance(probe, HttpProbe):
        check_port(probe.port, f"{field}.http.port")
        if not probe.path.startswith("/"):
            raise ValidationError(f"{field}.http.path", "must start with '/'")
        check_text(probe.path, f"{field}.http.path", limit=2048)
    elif isinstance(probe, TcpProbe):
        check_port(probe.port, f"{field}.tcp.port")
    elif isinstance(probe, ExecProbe):
        check_argv(probe.command, f"{field}.exec.command", required=True)


def check_http_call(call: HttpCall, field: str) -> None:
    check_url(call.url, f"{field}.url")
    if call.method not in _HTTP_METHODS:
        raise ValidationError(f"{field}.method", f"must be one of {sorted(_HTTP_METHODS)}")
    check_seconds(call.timeout, f"{field}.timeout", minimum=0.001)
    if len(call.body) > MAX_HTTP_BODY:
        raise ValidationError(f"{field}.body", f"is longer than {MAX_HTTP_BODY} bytes")
    for key, value in call.headers.items():
        check_text(key, f"{field}.headers", limit=256)
        check_text(value, f"{field}.headers[{key!r}]", limit=8192)
    for i, code in enumerate(call.expected_status):
        if not 100 <= code <= 599:
            raise ValidationError(f"{field}.expected_status[{i}]", "must be an HTTP status")


def validate_task_spec(spec: TaskSpec, field: str = "spec") -> TaskSpec:
    """Check every field of a spec; returns it unchanged or raises ValidationError."""
    check_name(spec.name, f"{field}.name")
    if spec.runtime not in RUNTIMES:
        raise ValidationError(f"{field}.runtime", f"must be one of {', '.join(RUNTIMES)}")
    needs_image = spec.runtime == "docker" or (
        spec.runtime == "kubernetes" and not (spec.kubernetes and spec.kubernetes.manifests)
    )
    if needs_image or spec.image:
        if not spec.image:
            raise ValidationError(f"{field}.image", f"is required by the {spec.runtime} runtime")
        check_image(spec.image, f"{field}.image")
    check_argv(spec.command, f"{field}.command", required=spec.runtime == "process")
    check_env(spec.env, f"{field}.env")
    check_env(spec.secret_env, f"{field}.secret_env")
    for key in spec.secret_env:
        if key in spec.env:
            raise ValidationError(
                f"{field}.secret_env[{key!r}]", "is also in env: a variable is plain or secret"
            )
    if spec.namespace:
        check_name(spec.namespace, f"{field}.namespace")
    check_text(spec.working_dir, f"{field}.working_dir", limit=4096)
    check_resources(spec.resources, f"{field}.resources")
    check_ports(spec.ports, f"{field}.ports")
    check_restart(spec.restart_policy, f"{field}.restart_policy")
    if spec.health_check is not None:
        check_health(spec.health_check, f"{field}.health_check")
    check_labels(spec.labels, f"{field}.labels")
    check_labels(spec.constraints, f"{field}.constraints")
    if spec.network not in ("", "bridge", "host"):
        raise ValidationError(f"{field}.network", "must be bridge or host")
    if spec.runtime == "http":
        if spec.http is None:
            raise ValidationError(f"{field}.http", "is required by the http runtime")
        check_http_call(spec.http, f"{field}.http")
    if spec.fake is not None:
        check_seconds(spec.fake.duration, f"{field}.fake.duration")
        if not 0.0 <= spec.fake.failure_rate <= 1.0:
            raise ValidationError(f"{field}.fake.failure_rate", "must be between 0 and 1")
    check_seconds(spec.stop_grace, f"{field}.stop_grace")
    check_seconds(spec.deadline, f"{field}.deadline")
    if spec.disconnect.stop_after is not None:
        check_seconds(spec.disconnect.stop_after, f"{field}.disconnect.stop_after")
    check_dependencies(spec.depends_on, f"{field}.depends_on")
    return spec


MAX_DEPENDENCIES = 100


def check_dependencies(dependencies: Sequence[Dependency], field: str) -> None:
    """Each names a task id once; whether the ids exist is the manager's to say."""
    if len(dependencies) > MAX_DEPENDENCIES:
        raise ValidationError(field, f"at most {MAX_DEPENDENCIES} dependencies")
    seen: set[str] = set()
    for i, dependency in enumerate(dependencies):
        check_task_id(dependency.task_id, f"{field}[{i}].task_id")
        if dependency.task_id in seen:
            raise ValidationError(
                f"{field}[{i}].task_id", f"{dependency.task_id!r} is listed twice"
            )
        seen.add(dependency.task_id)


def check_task_id(value: str, field: str = "id") -> str:
    """Client-chosen ids (Cube sends UUIDs): printable, no '/', at most 128 characters."""
    if (
        not value
        or len(value) > 128
        or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._:-]*", value, re.ASCII)
    ):
        raise ValidationError(field, f"{value!r} is not a valid id")
    return value
