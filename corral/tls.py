"""Mutual TLS for every Corral link, and the exposure rule for listen addresses.

One ``TlsFiles`` (``--tls-cert --tls-key --tls-ca``, env ``CORRAL_TLS_*``)
serves both ends: a server presents the certificate and requires a client
certificate signed by the CA; a client (CLI, worker, gateway) presents the
same pair and trusts only that CA. Any CA works: the files are PEM, as
openssl writes them. ``init`` makes a CA and certificates with
``cryptography`` for a quick start (``corral tls init``).

``check_exposure`` is the secure default: a server refuses a non-loopback
listen address unless TLS and ACLs are on, or the operator said
``--insecure`` (then it warns). A loopback address stays open for a newcomer.
"""

from __future__ import annotations

import datetime
import ipaddress
import logging
import os
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from corral.errors import ValidationError

log = logging.getLogger(__name__)

# Quick-start certificates live a year; operators bring their own for longer.
VALIDITY = datetime.timedelta(days=365)
_FIELDS = ("tls_cert", "tls_key", "tls_ca")


@dataclass(frozen=True)
class TlsFiles:
    """The three PEM files of one party; all three or none."""

    cert: Path | None = None
    key: Path | None = None
    ca: Path | None = None

    @property
    def enabled(self) -> bool:
        return self.cert is not None or self.key is not None or self.ca is not None

    def read(self) -> tuple[bytes, bytes, bytes]:
        """(cert, key, ca) bytes; a missing or unreadable file is an error naming its flag."""
        paths = (self.cert, self.key, self.ca)
        given = [p for p in paths if p is not None]
        if len(given) != 3:
            missing = [f for f, p in zip(_FIELDS, paths, strict=True) if p is None]
            raise ValidationError(
                missing[0], "--tls-cert, --tls-key and --tls-ca are given together"
            )
        out: list[bytes] = []
        for field, path in zip(_FIELDS, given, strict=True):
            try:
                out.append(path.read_bytes())
            except OSError as err:
                raise ValidationError(field, f"cannot read {path}: {err.strerror}") from None
            if b"-----BEGIN" not in out[-1]:
                raise ValidationError(field, f"{path} is not a PEM file")
        return out[0], out[1], out[2]


def server_credentials(files: TlsFiles) -> grpc.ServerCredentials:
    """TLS that requires a client certificate signed by the CA (mTLS)."""
    cert, key, ca = files.read()
    return grpc.ssl_server_credentials(
        [(key, cert)], root_certificates=ca, require_client_auth=True
    )


def channel_credentials(files: TlsFiles) -> grpc.ChannelCredentials:
    """Trust only the CA; present our certificate as the client's."""
    cert, key, ca = files.read()
    return grpc.ssl_channel_credentials(
        root_certificates=ca, private_key=key, certificate_chain=cert
    )


def peer_identity(auth_context: dict[str, list[bytes]]) -> str:
    """The verified client certificate's common name (empty on a plaintext link)."""
    names = auth_context.get("x509_common_name") or []
    return names[0].decode() if names else ""


# -- exposure ------------------------------------------------------------------


def host_of(listen: str) -> str:
    host = listen.rsplit(":", 1)[0] if ":" in listen else listen
    return host.strip("[]")


def is_loopback(listen: str) -> bool:
    """True when every address ``listen``'s host stands for is a loopback address."""
    host = host_of(listen)
    if not host:
        return False
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False
    return bool(infos) and all(
        ipaddress.ip_address(str(info[4][0]).split("%")[0]).is_loopback for info in infos
    )


TLS_NEEDED = "TLS (--tls-cert/--tls-key/--tls-ca)"
ACL_NEEDED = "ACLs (--acl)"


def check_exposure(
    listen: str,
    *,
    tls: bool,
    acl: bool,
    insecure: bool,
    program: str,
    field: str = "listen",
    needs: tuple[str, str] = (TLS_NEEDED, ACL_NEEDED),
) -> None:
    """Refuse a non-loopback listen address without TLS and ACLs unless ``insecure``.

    ``needs`` names the two protections as the program's flags say them.
    """
    if is_loopback(listen) or (tls and acl):
        return
    if insecure:
        log.warning(
            "%s listens on %s without %s: anyone who reaches it may use it (--insecure)",
            program,
            listen,
            _missing(tls, acl, needs),
        )
        return
    missing = _missing(tls, acl, needs)
    raise ValidationError(
        field,
        f"{program} refuses the non-loopback address {listen} without {missing};"
        " listen on 127.0.0.1, turn them on, or pass --insecure",
    )


def _missing(tls: bool, acl: bool, needs: tuple[str, str]) -> str:
    return " and ".join(name for name, on in zip(needs, (tls, acl), strict=True) if not on)


# -- corral tls init -------------------------------------------------------------


@dataclass(frozen=True)
class Issued:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Corral"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def make_ca(common_name: str = "Corral CA", *, now: datetime.datetime | None = None) -> Issued:
    start = now or datetime.datetime.now(datetime.UTC)
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(_name(common_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start - datetime.timedelta(minutes=5))
        .not_valid_after(start + VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    return Issued(cert, key)


def _san(hosts: Sequence[str]) -> x509.SubjectAlternativeName:
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return x509.SubjectAlternativeName(names)


def issue(
    ca: Issued,
    common_name: str,
    hosts: Sequence[str],
    *,
    not_before: datetime.datetime | None = None,
    not_after: datetime.datetime | None = None,
) -> Issued:
    """A certificate for servers and clients alike (serverAuth and clientAuth)."""
    start = not_before or datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=5)
    key = ec.generate_private_key(ec.SECP256R1())
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(not_after or start + VALIDITY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
    )
    if hosts:
        builder = builder.add_extension(_san(hosts), critical=False)
    return Issued(builder.sign(ca.key, hashes.SHA256()), key)


def write_pair(issued: Issued, cert_path: Path, key_path: Path) -> None:
    """Write a certificate (0644) and its key (0600, never readable by others)."""
    cert_path.write_bytes(issued.cert.public_bytes(serialization.Encoding.PEM))
    key_bytes = issued.key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(key_bytes)
    os.chmod(key_path, 0o600)


LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1")


def init(directory: Path, hosts: Sequence[str]) -> dict[str, Path]:
    """A CA, a certificate for Corral's servers (``hosts`` plus loopback) and one for a user.

    Refuses to overwrite an existing CA: re-running would silently invalidate
    every certificate already handed out.
    """
    for i, host in enumerate(hosts):
        if not host or any(c.isspace() or c in ",/\x00" for c in host) or not host.isascii():
            raise ValidationError(f"hosts[{i}]", f"{host!r} is not a host name or IP address")
    directory.mkdir(parents=True, exist_ok=True)
    paths = {
        "ca": directory / "ca.pem",
        "ca_key": directory / "ca-key.pem",
        "server": directory / "server.pem",
        "server_key": directory / "server-key.pem",
        "client": directory / "client.pem",
        "client_key": directory / "client-key.pem",
    }
    if paths["ca"].exists():
        raise ValidationError("dir", f"{paths['ca']} exists: not replacing an existing CA")
    ca = make_ca()
    write_pair(ca, paths["ca"], paths["ca_key"])
    every_host = list(dict.fromkeys([*hosts, *LOCAL_HOSTS]))
    write_pair(issue(ca, "corral-server", every_host), paths["server"], paths["server_key"])
    write_pair(issue(ca, "corral-client", []), paths["client"], paths["client_key"])
    return paths
