"""Manager settings; every flag of ``corral manager`` (and ``corral up``) lands here."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from corral.errors import ValidationError
from corral.model import Disconnect, lease_stop_after
from corral.tls import TlsFiles

STRATEGIES = ("round-robin", "epvm", "binpack", "spread")


@dataclass(frozen=True)
class ManagerConfig:
    listen: str = "127.0.0.1:50051"
    data_dir: Path = Path(".corral/manager")
    heartbeat_interval: float = 1.0
    # A node silent for this long is DOWN and its attempts LOST.
    ttl: float = 3.0
    # The disconnect policy of tasks that leave it unset (Nomad's `disconnect`):
    # seconds a worker keeps a task running without renewing its lease (0 =
    # two thirds of the TTL; it must stay below the TTL), and whether a DOWN
    # node's tasks are replaced.
    disconnect_stop_after: float = 0.0
    disconnect_replace: bool = True
    # Retention (manager.retention): finished tasks (with their attempts and the
    # workers' logs of them) are forgotten this long after they end, only the
    # newest `retain_events` events are kept, and a pass runs every `gc_every`.
    retain_finished: float = 24 * 3600.0
    retain_events: int = 100_000
    gc_every: float = 60.0
    strategy: str = "binpack"
    # Jobs (POST /jobs): where `sh -c cmd` runs, and the image for container runtimes.
    jobs_runtime: str = "process"
    jobs_image: str = "python:3.12-alpine"
    # Environments (POST /start): runtime, template file (None = the shipped
    # manager/environments/shipped_templates.yaml), ingress domain and per-tenant namespaces.
    environments_runtime: str = "process"
    environment_templates: Path | None = None
    environments_domain: str = "corral.localhost"
    environments_namespace: str = "default"
    tenant_namespaces: bool = False
    # Schedules: the files that define the schedule named `default` (YAML, JSON
    # or the original appsettings.json, merged in order with environment overrides
    # as ASP.NET does); without them, `default_schedule_url` (set by `corral up` to
    # the gateway's /health) is called every minute. The schedule of the files is
    # Running from the manager's start, as the original's loop, unless autostart is off.
    schedules_file: tuple[Path, ...] = ()
    schedules_autostart: bool = True
    default_schedule_url: str = ""
    # Grace period given to RPCs in flight on SIGTERM.
    stop_grace: float = 5.0
    # Several managers: a postgresql://USER@HOST:PORT/DB URL puts the state there
    # (empty = SQLite under data_dir); the managers sharing it elect one leader.
    store: str = ""
    # HOST:PORT that clients and workers are told to use for this manager when it
    # leads (empty = the listen address).
    advertise: str = ""
    # Seconds a leader's lease lasts unrenewed: how long a paused or partitioned
    # leader keeps the others waiting (a dead one's session frees it at once).
    lease_duration: float = 4.0

    # Where `run` writes the port it listens on once it serves (for --listen HOST:0).
    port_file: Path | None = None
    # Prometheus /metrics on HOST:PORT (off when empty), and log lines as json or
    # text (empty: text on a terminal, json otherwise). See corral/metrics.py, logformat.py.
    metrics_listen: str = ""
    log_format: str = ""
    # Mutual TLS (corral.tls): served with this certificate, clients need one from the CA;
    # the manager presents it too when it dials a worker for logs.
    tls_cert: Path | None = None
    tls_key: Path | None = None
    tls_ca: Path | None = None
    # Bearer tokens with roles (manager.acl); off keeps a loopback cluster open.
    acl: bool = False
    # Serve a non-loopback address without TLS and ACLs (warned at start).
    insecure: bool = False
    # Key that encrypts secret_env at rest; generated under the data dir when absent.
    secret_key_file: Path | None = None

    def __post_init__(self) -> None:
        if not self.ttl > 0:
            raise ValidationError("ttl", "must be a positive number of seconds")
        if not self.retain_finished >= 0:
            raise ValidationError("retain_finished", "must be 0 or more seconds")
        if self.retain_events < 1:
            raise ValidationError("retain_events", "must keep at least one event")
        if not self.gc_every > 0:
            raise ValidationError("gc_every", "must be a positive number of seconds")
        if not 0 <= self.disconnect_stop_after < self.ttl:
            raise ValidationError(
                "disconnect_stop_after",
                f"must be at least 0 and less than the TTL ({self.ttl:g}s)",
            )
        self._check_several_managers()

    def _check_several_managers(self) -> None:
        if self.store and not self.store.startswith(("postgresql://", "postgres://")):
            raise ValidationError(
                "store", f"{self.store!r} is not a postgresql://USER@HOST:PORT/DB URL"
            )
        if self.advertise:
            host, sep, port = self.advertise.rpartition(":")
            if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
                raise ValidationError("advertise", f"{self.advertise!r} is not HOST:PORT")
        if not self.lease_duration > 0:
            raise ValidationError("lease_duration", "must be a positive number of seconds")

    @property
    def disconnect(self) -> Disconnect:
        """The manager-wide disconnect policy, both fields set."""
        stop_after = self.disconnect_stop_after or lease_stop_after(self.ttl)
        return Disconnect(stop_after=stop_after, replace=self.disconnect_replace)

    @property
    def tls(self) -> TlsFiles:
        return TlsFiles(self.tls_cert, self.tls_key, self.tls_ca)
