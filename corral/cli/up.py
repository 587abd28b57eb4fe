"""``corral up``: a manager, one worker and the gateway on this machine.

Each program is a child process in its own session, so ``up`` alone decides
when they stop: Ctrl-C (SIGINT) or SIGTERM stops the gateway, the worker and
then the manager (SIGTERM to each process group, SIGKILL after a grace period)
and exits 0. If a child dies on its own, the others are stopped and ``up``
exits 1 with the last lines the child wrote. Children's output is copied to
our stderr, prefixed with their name.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import signal
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated

import httpx
import typer

from corral import logformat
from corral.cli import children as children_mod
from corral.cli.connection import TOKEN_FILE
from corral.cli.options import console, errors, parse_or_exit
from corral.client import Client, wait_healthy
from corral.errors import CorralError, NotFound
from corral.metrics import split_listen
from corral.model import NodeStatus
from corral.tls import TlsFiles

READY_TIMEOUT = 60.0
# The node token `up --acl` makes for its worker (remade at every start).
UP_WORKER = "up-worker"


async def _http_ready(url: str, timeout: float) -> bool:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    async with httpx.AsyncClient(timeout=1.0) as http:
        while loop.time() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if (await http.get(url)).status_code < 500:
                    return True
            await asyncio.sleep(0.1)
    return False


async def _node_ready(manager: str, timeout: float, token: str, tls: TlsFiles | None) -> bool:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    async with Client(manager, timeout=2.0, token=token, tls=tls) as client:
        while loop.time() < deadline:
            with contextlib.suppress(Exception):
                nodes = await client.list_nodes()
                if any(n.status is NodeStatus.READY for n in nodes):
                    return True
            await asyncio.sleep(0.1)
    return False


async def _worker_ready(worker: str, manager: str, token: str, tls: TlsFiles | None) -> bool:
    """The worker answers its own health check and the manager lists it READY."""
    serving = worker.endswith(":0") or await wait_healthy(worker, timeout=READY_TIMEOUT, tls=tls)
    return serving and await _node_ready(manager, READY_TIMEOUT, token, tls)


async def _tokens(manager: str, data_dir: Path, tls: TlsFiles | None) -> tuple[str, str]:
    """With ACLs: the management token (bootstrapped once into <data-dir>/token, 0600)
    and a fresh node token for the worker, passed in its environment, not its argv."""
    path = data_dir / TOKEN_FILE
    async with Client(manager, timeout=5.0, tls=tls) as client:
        if not path.exists():
            write_secret(path, (await client.acl_bootstrap()).secret)
    management = path.read_text().strip()
    async with Client(manager, timeout=5.0, token=management, tls=tls) as admin:
        with contextlib.suppress(NotFound):
            await admin.revoke_token(UP_WORKER)
        node = await admin.create_token(UP_WORKER, "node")
    return management, node.secret


def write_secret(path: Path, secret: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(secret + "\n")


@dataclasses.dataclass(frozen=True)
class UpSettings:
    manager_listen: str
    worker_listen: str
    gateway_listen: str
    data_dir: Path
    manager_flags: tuple[str, ...]
    worker_flags: tuple[str, ...]
    gateway_flags: tuple[str, ...] = ()
    acl: bool = False
    tls: TlsFiles = dataclasses.field(default_factory=TlsFiles)
    # Where each child serves /metrics ("" when off), for the announcement.
    metrics: tuple[tuple[str, str], ...] = ()


async def supervise(settings: UpSettings) -> int:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    children: list[children_mod.Child] = []
    s = settings
    manager_args = ["manager", "--listen", s.manager_listen]
    manager_args += ["--data-dir", str(s.data_dir / "manager"), *s.manager_flags]
    manager_args += [f"--default-schedule-url=http://{s.gateway_listen}/health"]
    worker_args = ["worker", "--manager", s.manager_listen, "--listen", s.worker_listen]
    worker_args += ["--data-dir", str(s.data_dir / "worker"), *s.worker_flags]
    gateway_url = f"http://{s.gateway_listen}/"
    gateway_args = ["gateway", "--manager", s.manager_listen, "--listen", s.gateway_listen]
    gateway_args += s.gateway_flags
    if s.acl:
        manager_args.append("--acl")
    tls = s.tls if s.tls.enabled else None
    # Every child takes the same files (their CORRAL_TLS_* twins of --tls-*).
    tls_env = {
        name: str(path)
        for name, path in (
            ("CORRAL_TLS_CERT", s.tls.cert),
            ("CORRAL_TLS_KEY", s.tls.key),
            ("CORRAL_TLS_CA", s.tls.ca),
        )
        if path is not None
    }
    tokens = {"management": "", "node": ""}

    async def manager_ready() -> bool:
        if not await wait_healthy(s.manager_listen, timeout=READY_TIMEOUT, tls=tls):
            return False
        if s.acl:
            tokens["management"], tokens["node"] = await _tokens(s.manager_listen, s.data_dir, tls)
        return True

    steps: list[tuple[str, list[str], Callable[[], Awaitable[bool]]]] = [
        ("manager", manager_args, manager_ready),
        (
            "worker",
            worker_args,
            lambda: _worker_ready(s.worker_listen, s.manager_listen, tokens["management"], tls),
        ),
        ("gateway", gateway_args, lambda: _http_ready(gateway_url, READY_TIMEOUT)),
    ]
    try:
        for name, args, ready in steps:
            env = dict(tls_env)
            if name == "worker" and s.acl:
                env["CORRAL_TOKEN"] = tokens["node"]
            children.append(await children_mod.spawn(name, args, env))
            if not await children_mod.until(ready(), children, stop):
                if stop.is_set():
                    return 0
                errors.print(f"[red]corral up:[/] {name} did not become ready in time")
                return 1
        _announce(settings)
        await children_mod.until(stop.wait(), children, stop)
        return 0
    except CorralError as err:
        # ACL set-up: a bootstrapped manager whose token file was removed, say.
        errors.print(f"[red]corral up:[/] {err.message}")
        return 1
    except children_mod.ChildDied as died:
        child = died.child
        errors.print(
            f"[red]corral up:[/] {child.name} exited with code {child.proc.returncode}:\n"
            f"{child.last_words()}"
        )
        return 1
    finally:
        await children_mod.stop_all(children, children_mod.STOP_GRACE)
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


def _announce(s: UpSettings) -> None:
    tls = "mutual TLS" if s.tls.enabled else "no TLS"
    if s.acl:
        access = (
            f"  access   {tls}, ACLs on: the management token is in"
            f" {s.data_dir / TOKEN_FILE} (mode 0600); the CLI reads it from there\n"
        )
    else:
        access = (
            f"  access   OPEN: {tls}, no ACLs; anyone who can reach these loopback ports"
            " may use Corral (`corral up --acl` turns ACLs on)\n"
        )
    console.print(
        "[bold green]Corral is up.[/]\n"
        + access
        + f"  manager  grpc {s.manager_listen}"
        + ("\n" if s.tls.enabled else f"   (grpcurl -plaintext {s.manager_listen} list)\n")
        + f"  worker   grpc {s.worker_listen}\n"
        f"  gateway  http://{s.gateway_listen}   (API docs: http://{s.gateway_listen}/docs)\n"
        f"  web UI   http://{s.gateway_listen}/ui/\n"
        f"  data     {s.data_dir}\n"
        + "".join(
            f"  metrics  {name}: http://{where}/metrics\n" for name, where in s.metrics if where
        )
        + "Try: corral run --name hello --wait -- echo hello && corral logs hello\n"
        "Ctrl-C stops everything.",
        highlight=False,
    )


def _given(**flags: str | Path | bool | None) -> list[str]:
    """``--flag value`` for each flag the user gave (children keep their defaults)."""
    out: list[str] = []
    for name, value in flags.items():
        flag = "--" + name.replace("_", "-")
        if value is True:
            out.append(flag)
        elif value is not None and value is not False:
            out += [flag, str(value)]
    return out


def _check_listens(**listens: str | None) -> None:
    for field, value in listens.items():
        if value:
            split_listen(value, field)


def up(
    manager_listen: Annotated[
        str, typer.Option(envvar="CORRAL_MANAGER_LISTEN", help="Manager gRPC address.")
    ] = "127.0.0.1:50051",
    worker_listen: Annotated[
        str, typer.Option(envvar="CORRAL_WORKER_LISTEN", help="Worker gRPC address.")
    ] = "127.0.0.1:50052",
    gateway_listen: Annotated[
        str, typer.Option(envvar="CORRAL_GATEWAY_LISTEN", help="Gateway HTTP address.")
    ] = "127.0.0.1:8080",
    data_dir: Annotated[
        Path, typer.Option(envvar="CORRAL_DATA_DIR", help="State (manager/, worker/ inside).")
    ] = Path(".corral"),
    *,
    strategy: Annotated[str | None, typer.Option(help="Scheduling strategy.")] = None,
    jobs_runtime: Annotated[str | None, typer.Option(help="Runtime of POST /jobs.")] = None,
    jobs_image: Annotated[str | None, typer.Option(help="Image of container jobs.")] = None,
    environments_runtime: Annotated[
        str | None, typer.Option(help="Runtime of environments.")
    ] = None,
    schedules: Annotated[
        list[str] | None,
        typer.Option(help="Schedules file(s), merged in order (repeat or comma-separate)."),
    ] = None,
    environments_domain: Annotated[
        str | None, typer.Option(help="Ingress domain of environments ({replId}.DOMAIN).")
    ] = None,
    environment_templates: Annotated[
        Path | None, typer.Option(help="Per-language environment templates (YAML).")
    ] = None,
    tenant_namespaces: Annotated[
        bool, typer.Option(help="One Kubernetes namespace per environment tenant.")
    ] = False,
    docker_network: Annotated[
        str | None, typer.Option(help="Default Docker network of the worker: bridge or host.")
    ] = None,
    kubeconfig: Annotated[str | None, typer.Option(help="Kubeconfig for kubernetes.")] = None,
    namespace: Annotated[str | None, typer.Option(help="Kubernetes namespace.")] = None,
    manager_metrics_listen: Annotated[
        str | None,
        typer.Option(help="Manager's Prometheus /metrics HOST:PORT (off if unset)."),
    ] = None,
    worker_metrics_listen: Annotated[
        str | None,
        typer.Option(help="Worker's Prometheus /metrics HOST:PORT (off if unset)."),
    ] = None,
    gateway_metrics_listen: Annotated[
        str | None,
        typer.Option(help="Gateway's Prometheus /metrics HOST:PORT (off if unset)."),
    ] = None,
    log_format: Annotated[
        str | None,
        typer.Option(help="Log lines of all three: json or text (default: text on a terminal)."),
    ] = None,
    acl: Annotated[
        bool,
        typer.Option(
            envvar="CORRAL_ACL",
            help="Turn ACLs on; the management token is written to <data-dir>/token (0600).",
        ),
    ] = False,
    tls_cert: Annotated[
        Path | None,
        typer.Option(envvar="CORRAL_TLS_CERT", help="PEM certificate of all three (mTLS)."),
    ] = None,
    tls_key: Annotated[
        Path | None, typer.Option(envvar="CORRAL_TLS_KEY", help="PEM key of --tls-cert.")
    ] = None,
    tls_ca: Annotated[
        Path | None, typer.Option(envvar="CORRAL_TLS_CA", help="PEM CA of the certificates.")
    ] = None,
    store: Annotated[
        str | None,
        typer.Option(
            envvar="CORRAL_STORE",
            help="Keep the manager's state in PostgreSQL (postgresql://USER@HOST:PORT/DB).",
        ),
    ] = None,
) -> None:
    """Run a manager, a worker and the gateway here; Ctrl-C stops them all."""
    # The children write to a pipe: they log as this terminal would have them.
    logs = parse_or_exit(lambda: logformat.check_format(log_format or ""))
    parse_or_exit(
        lambda: _check_listens(
            manager_metrics_listen=manager_metrics_listen,
            worker_metrics_listen=worker_metrics_listen,
            gateway_metrics_listen=gateway_metrics_listen,
        )
    )
    settings = UpSettings(
        manager_listen=manager_listen,
        worker_listen=worker_listen,
        gateway_listen=gateway_listen,
        data_dir=data_dir,
        manager_flags=tuple(
            _given(
                strategy=strategy,
                jobs_runtime=jobs_runtime,
                jobs_image=jobs_image,
                environments_runtime=environments_runtime,
                schedules_file=",".join(schedules) if schedules else None,
                environments_namespace=namespace,
                environments_domain=environments_domain,
                environment_templates=environment_templates,
                tenant_namespaces=tenant_namespaces,
                metrics_listen=manager_metrics_listen,
                log_format=logs,
                store=store,
            )
        ),
        worker_flags=tuple(
            _given(
                kubeconfig=kubeconfig,
                namespace=namespace,
                docker_network=docker_network,
                metrics_listen=worker_metrics_listen,
                log_format=logs,
            )
        ),
        gateway_flags=tuple(_given(metrics_listen=gateway_metrics_listen, log_format=logs)),
        acl=acl,
        tls=TlsFiles(tls_cert, tls_key, tls_ca),
        metrics=(
            ("manager", manager_metrics_listen or ""),
            ("worker", worker_metrics_listen or ""),
            ("gateway", gateway_metrics_listen or ""),
        ),
    )
    raise typer.Exit(asyncio.run(supervise(settings)))
