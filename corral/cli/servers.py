"""``corral manager``, ``corral worker``, ``corral gateway`` and ``corral up``.

The flags of ``manager`` and ``worker`` are generated from the fields of
``ManagerConfig`` and ``WorkerConfig``: a field added to a config is a flag
(``--heartbeat-interval``) with an env var twin (``CORRAL_HEARTBEAT_INTERVAL``)
without touching this module, and no field can be forgotten. Maps and lists
are comma-separated (``--labels zone=a,disk=ssd``), so the env var twin reads
the same; capacity is ``cpu=2,memory=4Gi,disk=20Gi``.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import types
import typing
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from corral import logformat
from corral.cli import up as up_command
from corral.cli.options import errors, fail, parse_or_exit, parse_pairs, parse_size
from corral.errors import CorralError, ValidationError
from corral.logformat import check_format
from corral.metrics import split_listen
from corral.model import Resources
from corral.schedulefiles import parse_duration
from corral.tls import TlsFiles

# Short help per field; the dataclasses hold the rationale in their comments.
_HELP = {
    "listen": "Address to listen on (HOST:PORT; port 0 picks a free one).",
    "manager": "Manager address (HOST:PORT); several managers comma-separated (a:50051,b:50051).",
    "store": "State in PostgreSQL (postgresql://USER@HOST:PORT/DB) shared by several managers;"
    " default: SQLite under --data-dir.",
    "advertise": "HOST:PORT clients and workers are told to use for this manager"
    " (default: --listen).",
    "lease_duration": "Seconds a leader's lease lasts unrenewed (several managers).",
    "data_dir": "Directory for durable state.",
    "heartbeat_interval": "Seconds between worker heartbeats.",
    "ttl": "Seconds of silence after which a node is DOWN.",
    "disconnect_stop_after": "Default seconds a task runs on a node without a lease (0 = 2/3 TTL).",
    "disconnect_replace": "Default: replace a DOWN node's tasks, or keep them waiting for it.",
    "strategy": "Scheduling strategy: round-robin, epvm, binpack, spread.",
    "labels": "Node labels, k=v,k2=v2.",
    "capacity": "Offered capacity, cpu=2,memory=4Gi,disk=20Gi (unset parts are measured).",
    "runtimes": "Runtimes offered, comma-separated.",
    "port_file": "Write the port listened on to this file once serving (for port 0).",
    "schedules_file": (
        "Files defining the schedule `default`, merged in order (repeat the flag or separate"
        " with commas); appsettings.json brings appsettings.{Environment}.json, and"
        " CronJobSettings__*/HttpOrchestratorSettings__* variables override them."
    ),
    "schedules_autostart": "Start the schedule `default` of --schedules when the manager starts.",
    "metrics_listen": "Serve Prometheus /metrics on HOST:PORT (off when empty).",
    "log_format": "Log lines as json or text (default: text on a terminal, else json).",
    "tls_cert": "PEM certificate: served, and presented as the client certificate (mTLS).",
    "tls_key": "PEM private key of --tls-cert.",
    "tls_ca": "PEM CA bundle: peers must present a certificate it signed.",
    "acl": "Require bearer tokens with roles (corral acl bootstrap).",
    "insecure": "Allow a non-loopback listen address without TLS and ACLs (warned).",
    "secret_key_file": "Key that encrypts secret_env at rest (generated under the data dir).",
    "token": "Bearer token (role node) for the manager.",
    "task_user": "User that process tasks run as when the worker is root.",
    "http_allow": "CIDRs the http runtime may call despite its refusals, comma-separated.",
    "http_deny": "CIDRs the http runtime refuses besides link-local and Corral's ports.",
}


# Names the issues and the originals use, beside the generated ones.
_ALIASES = {"schedules_file": ("--schedules",)}


def _env_name(field: str) -> str:
    return "CORRAL_" + field.upper()


def _flag_type(hint: Any, name: str = "") -> tuple[Any, Callable[[Any], Any]]:
    """The type typer parses for a config field and how to turn it into the field's value."""
    origin = typing.get_origin(hint)
    if hint is float:  # seconds: 3, 1.5, 90s, 5m, 24h
        return str, lambda v: _seconds(v, name)
    if hint in (str, int, bool, Path):
        return hint, lambda v: v
    if origin in (types.UnionType, typing.Union) and Path in typing.get_args(hint):
        return Path | None, lambda v: v
    if hint is Resources:
        return str, _capacity
    if origin in (Mapping, dict):
        return str, lambda v: parse_pairs(_split(v), "labels")
    if origin is tuple and typing.get_args(hint)[0] is Path:
        # Repeatable, and each value may list several: --schedules a.json --schedules b.json,c.json
        return list[Path], lambda v: tuple(Path(p) for item in v or () for p in _split(str(item)))
    if origin is tuple:
        return str, lambda v: tuple(_split(v))
    raise TypeError(f"no flag type for {hint!r}")


def _seconds(value: str, name: str) -> float:
    try:
        return float(value)
    except ValueError:
        return parse_duration(value, name)


def _split(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def _capacity(value: str) -> Resources:
    parts = parse_pairs(_split(value), "capacity")
    unknown = set(parts) - {"cpu", "memory", "disk"}
    if unknown:
        raise ValidationError("capacity", f"unknown keys {sorted(unknown)}: use cpu, memory, disk")
    return Resources(
        cpu=float(parts.get("cpu", 0) or 0),
        memory_bytes=parse_size(parts.get("memory", "0"), "capacity.memory"),
        disk_bytes=parse_size(parts.get("disk", "0"), "capacity.disk"),
    )


def _flag_default(value: Any) -> Any:
    if isinstance(value, Resources):
        return ""
    if isinstance(value, Mapping):
        return ",".join(f"{k}={v}" for k, v in value.items())
    if isinstance(value, tuple):
        return ",".join(value) if all(isinstance(v, str) for v in value) else list(value)
    return value


def config_command(config_cls: type[Any], module: str) -> Callable[..., None]:
    """A typer command whose options are the fields of ``config_cls``; runs ``module.run``."""
    hints = typing.get_type_hints(config_cls)
    converters: dict[str, Callable[[Any], Any]] = {}
    params = []
    for field in dataclasses.fields(config_cls):
        flag_type, converters[field.name] = _flag_type(hints[field.name], field.name)
        default = (
            field.default_factory()
            if field.default is dataclasses.MISSING and callable(field.default_factory)
            else field.default
        )
        flag = "--" + field.name.replace("_", "-")
        option = typer.Option(
            f"{flag}/--no-{flag[2:]}" if flag_type is bool else flag,
            *_ALIASES.get(field.name, ()),
            envvar=_env_name(field.name),
            help=_HELP.get(field.name, field.name.replace("_", " ").capitalize() + "."),
        )
        params.append(
            inspect.Parameter(
                field.name,
                inspect.Parameter.KEYWORD_ONLY,
                default=None if flag_type == list[Path] else _flag_default(default),
                annotation=Annotated[flag_type, option],
            )
        )

    def command(**flags: Any) -> None:
        def parse() -> Any:
            config = config_cls(**{k: converters[k](v) for k, v in flags.items()})
            _check_observing(config.metrics_listen, config.log_format)
            return config

        config = parse_or_exit(parse)
        logformat.configure(config.log_format)
        _serve(module, config)

    command.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    command.__annotations__ = {p.name: p.annotation for p in params}
    return command


def _check_observing(metrics_listen: str, log_format: str) -> None:
    if metrics_listen:
        split_listen(metrics_listen, "metrics_listen")
    check_format(log_format)


def _serve(module: str, config: Any) -> None:
    # Imported when the command runs, so `corral run` never loads the servers.
    # A server that cannot start (bad template file, port taken) says why in one line.
    try:
        importlib.import_module(module).run(config)
    except CorralError as err:
        errors.print(f"cannot start: {escape(str(err))}")
        raise typer.Exit(2) from None
    except OSError as err:
        errors.print(f"cannot start: {escape(str(err))}")
        raise typer.Exit(2) from None


def gateway(
    manager: Annotated[
        str,
        typer.Option(
            envvar="CORRAL_MANAGER", help="Manager address (HOST:PORT); several: a:50051,b:50051."
        ),
    ] = "127.0.0.1:50051",
    listen: Annotated[
        str, typer.Option(envvar="CORRAL_GATEWAY_LISTEN", help="HTTP address (HOST:PORT).")
    ] = "127.0.0.1:8080",
    port_file: Annotated[
        Path | None,
        typer.Option(help="Write the port listened on to this file once serving (for port 0)."),
    ] = None,
    metrics_listen: Annotated[
        str, typer.Option(envvar="CORRAL_GATEWAY_METRICS_LISTEN", help=_HELP["metrics_listen"])
    ] = "",
    log_format: Annotated[
        str, typer.Option(envvar="CORRAL_LOG_FORMAT", help=_HELP["log_format"])
    ] = "",
    *,
    tls_cert: Annotated[
        Path | None, typer.Option(envvar="CORRAL_TLS_CERT", help=_HELP["tls_cert"])
    ] = None,
    tls_key: Annotated[
        Path | None, typer.Option(envvar="CORRAL_TLS_KEY", help=_HELP["tls_key"])
    ] = None,
    tls_ca: Annotated[Path | None, typer.Option(envvar="CORRAL_TLS_CA", help=_HELP["tls_ca"])] = (
        None
    ),
    https_cert: Annotated[
        Path | None, typer.Option(envvar="CORRAL_HTTPS_CERT", help="PEM certificate for HTTPS.")
    ] = None,
    https_key: Annotated[
        Path | None, typer.Option(envvar="CORRAL_HTTPS_KEY", help="PEM key of --https-cert.")
    ] = None,
    insecure: Annotated[
        bool, typer.Option(envvar="CORRAL_INSECURE", help=_HELP["insecure"])
    ] = False,
) -> None:
    """Run the REST gateway in front of a manager (and the web UI at /ui/)."""
    from gateway import server

    parse_or_exit(lambda: _check_observing(metrics_listen, log_format))
    logformat.configure(log_format)
    tls = TlsFiles(tls_cert, tls_key, tls_ca)
    https = server.Https(https_cert, https_key)
    try:
        if tls.enabled:
            tls.read()
        server.run(
            manager,
            listen,
            port_file,
            metrics_listen=metrics_listen,
            tls=tls,
            https=https,
            insecure=insecure,
        )
    except CorralError as err:
        raise fail(err) from None


def register(app: typer.Typer) -> None:
    from manager.config import ManagerConfig
    from worker.config import WorkerConfig

    manager = config_command(ManagerConfig, "manager.server")
    manager.__doc__ = "Run the manager: the control plane (gRPC, default 127.0.0.1:50051)."
    worker = config_command(WorkerConfig, "worker.server")
    worker.__doc__ = "Run a worker: dials the manager and runs its tasks."
    app.command("manager")(manager)
    app.command("worker")(worker)
    app.command("gateway")(gateway)
    app.command("up")(up_command.up)
