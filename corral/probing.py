"""Is a Corral server up? The check a container's HEALTHCHECK and an operator's
script run: the standard gRPC health protocol for the manager and workers (the
same protocol Kubernetes' ``grpc:`` probes speak), a plain GET for the gateway.

It returns a short word rather than raising, because its callers only print it
and turn it into an exit code.
"""

from __future__ import annotations

import os
from pathlib import Path

import grpc
import httpx
from grpc_health.v1 import health_pb2, health_pb2_grpc


def _credentials() -> grpc.ChannelCredentials | None:
    """TLS credentials from the ``CORRAL_TLS_*`` variables, when a CA is given."""
    ca = os.environ.get("CORRAL_TLS_CA")
    if not ca:
        return None
    cert, key = os.environ.get("CORRAL_TLS_CERT"), os.environ.get("CORRAL_TLS_KEY")
    return grpc.ssl_channel_credentials(
        root_certificates=Path(ca).read_bytes(),
        private_key=Path(key).read_bytes() if key else None,
        certificate_chain=Path(cert).read_bytes() if cert else None,
    )


def grpc_status(target: str, *, timeout: float = 3.0, service: str = "") -> str:
    """The serving status of ``target`` (``SERVING``, ``NOT_SERVING`` …), or why none came."""
    creds = _credentials()
    with grpc.secure_channel(target, creds) if creds else grpc.insecure_channel(target) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        try:
            reply = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=timeout)
        except grpc.RpcError as err:
            return f"UNREACHABLE ({err.code().name})"
    return str(health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status))


def http_status(url: str, *, timeout: float = 3.0) -> str:
    """``SERVING`` when ``url`` answers 2xx, else what it answered."""
    try:
        response = httpx.get(url, timeout=timeout)
    except httpx.HTTPError as err:
        return f"UNREACHABLE ({type(err).__name__})"
    return "SERVING" if response.is_success else f"NOT_SERVING (HTTP {response.status_code})"
