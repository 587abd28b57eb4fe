"""Worker settings; every flag of ``corral worker`` lands here."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from corral.model import Resources
from corral.tls import TlsFiles

DEFAULT_RUNTIMES = ("process", "docker", "kubernetes", "http", "fake")


@dataclass(frozen=True)
class WorkerConfig:
    manager: str = "127.0.0.1:50051"
    listen: str = "127.0.0.1:50052"
    # host:port the manager dials for WorkerService (log proxy); when empty, the
    # listen host with the bound port (the host name when listening on all interfaces).
    advertise: str = ""
    data_dir: Path = Path(".corral/worker")
    name: str = ""  # host name when empty
    labels: Mapping[str, str] = field(default_factory=dict)
    # Capacity offered to the scheduler; zero fields are measured with psutil.
    capacity: Resources = Resources()
    runtimes: tuple[str, ...] = DEFAULT_RUNTIMES
    # Bound of each attempt's kept output.
    log_max_bytes: int = 8 * 1024 * 1024
    # Docker: engine address (DOCKER_HOST when empty) and default network mode.
    docker_host: str = ""
    docker_network: str = "bridge"
    # Kubernetes: kubeconfig path (KUBECONFIG / in-cluster when empty) and namespace.
    kubeconfig: str = ""
    namespace: str = "default"
    # Reconnect backoff to the manager (jittered, doubling up to the max).
    reconnect_initial: float = 0.2
    reconnect_max: float = 5.0
    # Where `run` writes the port it listens on once it serves (for --listen HOST:0).
    port_file: Path | None = None
    # Prometheus /metrics on HOST:PORT (off when empty), and log lines as json or
    # text (empty: text on a terminal, json otherwise). See corral/metrics.py, logformat.py.
    metrics_listen: str = ""
    log_format: str = ""
    # Mutual TLS (corral.tls): the certificate serves WorkerService and is the
    # worker's client certificate to the manager.
    tls_cert: Path | None = None
    tls_key: Path | None = None
    tls_ca: Path | None = None
    # Bearer token (role node) sent on the stream to the manager; CORRAL_TOKEN.
    token: str = ""
    # Serve a non-loopback address without TLS and a token (warned at start).
    insecure: bool = False
    # When the worker runs as root, process tasks run as this user.
    task_user: str = "nobody"
    # The http runtime's egress rule (worker.runtimes.egress): CIDRs let through
    # despite the built-in refusals, and CIDRs refused besides them.
    http_allow: tuple[str, ...] = ()
    http_deny: tuple[str, ...] = ()

    @property
    def tls(self) -> TlsFiles:
        return TlsFiles(self.tls_cert, self.tls_key, self.tls_ca)
