"""A PKI made once per session with ``corral.tls`` (a module, not a conftest: tests
import ``conftest`` by name, and a second conftest.py would shadow the shared one)."""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from pathlib import Path

import pytest

from corral import tls
from corral.tls import TlsFiles


@dataclass(frozen=True)
class Pki:
    """Certificates for servers and clients of one CA, plus the ones it must refuse."""

    server: TlsFiles
    client: TlsFiles
    other_ca_client: TlsFiles
    expired_client: TlsFiles
    no_cert_client: TlsFiles  # trusts the CA but presents no certificate


def _pair(root: Path, name: str, issued: tls.Issued, ca: Path) -> TlsFiles:
    cert, key = root / f"{name}.pem", root / f"{name}-key.pem"
    tls.write_pair(issued, cert, key)
    return TlsFiles(cert, key, ca)


@pytest.fixture(scope="session", name="pki")
def pki_fixture(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    root = tmp_path_factory.mktemp("pki")
    paths = tls.init(root / "main", ["127.0.0.1"])
    ca = paths["ca"]
    ca_issued = tls.Issued(
        tls.x509.load_pem_x509_certificate(ca.read_bytes()),
        tls.serialization.load_pem_private_key(paths["ca_key"].read_bytes(), None),  # type: ignore[arg-type]
    )
    other = tls.make_ca("Another CA")
    long_ago = datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=30)
    expired = tls.issue(
        ca_issued,
        "corral-client",
        [],
        not_before=long_ago,
        not_after=long_ago + datetime.timedelta(days=1),
    )
    # The no-certificate client: a key/cert pair would be presented, so it gets
    # an empty pair and trusts the CA (channel built by hand in the test).
    return Pki(
        server=TlsFiles(paths["server"], paths["server_key"], ca),
        client=TlsFiles(paths["client"], paths["client_key"], ca),
        other_ca_client=_pair(root, "other", tls.issue(other, "corral-client", []), ca),
        expired_client=_pair(root, "expired", expired, ca),
        no_cert_client=TlsFiles(None, None, ca),
    )
