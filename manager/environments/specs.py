"""An environment as a long-running task, on each runtime.

Environments are ordinary tasks (restart policy ``always``, labelled
``corral.kind=environment`` and ``corral.environment=<replId>``), so they are
placed, health-checked, restarted and reconciled like any other:

- kubernetes: the rendered Deployment + Service + Ingress travel in
  ``spec.kubernetes.manifests``; the worker's runtime creates and deletes them.
  With ``tenant_namespaces`` a Namespace object comes first (the runtime only
  ensures it exists and never deletes it: other environments may live there).
- docker: the language's image and command, its port published on a free host port.
- process: the language's command on a free port of the manager's host
  (``corral up`` runs manager and worker side by side), with ``$PORT`` set
  and ``$HOST`` (``{bind}``) 127.0.0.1: a project's service is never
  exposed on every interface of the host.

Docker and process environments get a TCP health check on their port; on
Kubernetes the Deployment's readiness probe does that job inside the cluster.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from typing import Any

from corral.model import (
    HealthCheck,
    KubernetesSpec,
    PortMapping,
    Resources,
    RestartMode,
    RestartPolicy,
    TaskSpec,
    TcpProbe,
)
from manager.config import ManagerConfig
from manager.environments.templates import (
    BIND_CONTAINER,
    BIND_HOST,
    Template,
    render_command,
    render_manifests,
)

KIND_LABEL = "corral.kind"
KIND = "environment"
ENV_LABEL = "corral.environment"
LANGUAGE_LABEL = "corral.language"
TENANT_LABEL = "corral.tenant"

RESTART = RestartPolicy(mode=RestartMode.ALWAYS, max_attempts=0, backoff=1.0, max_backoff=30.0)


@dataclass(frozen=True)
class Placement:
    """Where an environment lives: its ingress host and (Kubernetes) namespace."""

    host: str
    namespace: str


def placement(repl_id: str, tenant: str, config: ManagerConfig) -> Placement:
    namespace = config.environments_namespace
    if config.tenant_namespaces and tenant:
        namespace = tenant
    return Placement(f"{repl_id}.{config.environments_domain}", namespace)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def environment_spec(
    template: Template, *, repl_id: str, tenant: str, config: ManagerConfig
) -> TaskSpec:
    """The task of one environment; ``repl_id`` and ``tenant`` are checked DNS labels."""
    where = placement(repl_id, tenant, config)
    labels = {KIND_LABEL: KIND, ENV_LABEL: repl_id, LANGUAGE_LABEL: template.language}
    if tenant:
        labels[TENANT_LABEL] = tenant
    runtime = config.environments_runtime
    common: dict[str, Any] = {
        "name": repl_id,
        "runtime": runtime,
        "labels": labels,
        "restart_policy": RESTART,
    }
    if runtime == "kubernetes":
        manifests = render_manifests(
            template, repl_id=repl_id, host=where.host, namespace=where.namespace
        )
        if config.tenant_namespaces and tenant:
            namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": tenant}}
            manifests = (namespace, *manifests)
        return TaskSpec(
            **common,
            kubernetes=KubernetesSpec(namespace=where.namespace, manifests=manifests),
        )
    port = template.port if runtime == "docker" else free_port()
    host_port = 0 if runtime == "docker" else port
    bind = BIND_CONTAINER if runtime == "docker" else BIND_HOST
    return TaskSpec(
        **common,
        image=template.image if runtime == "docker" else "",
        command=render_command(template, port, bind=bind),
        # HOST: where the service listens; on the process runtime never all interfaces.
        env={"PORT": str(port), "HOST": bind, "REPL_ID": repl_id},
        # ulimit -v, the process runtime's memory limit, counts address space, which
        # interpreters reserve generously: the limit is left to containers.
        resources=template.resources if runtime == "docker" else Resources(),
        # Published on the node's loopback only: a project's service is not the network's.
        ports=(PortMapping(container_port=port, host_port=host_port, host_ip=BIND_HOST),),
        health_check=HealthCheck(
            probe=TcpProbe(port=port), interval=2.0, timeout=1.0, failure_threshold=3
        ),
    )
