"""Where the ``http`` runtime may connect: no SSRF by default.

An http task (or a schedule's endpoint) names any URL, and its response body
comes back through ``GET /v1/tasks/{id}``: without a rule, a user could read
a cloud metadata service (169.254.169.254) or a loopback-only admin port
through the worker. ``EgressPolicy`` refuses, before any connection:

- link-local addresses (169.254.0.0/16, fe80::/10, and their IPv4-mapped
  forms) and the metadata services' names;
- the ports of Corral's own servers (the manager the worker dials, the
  worker's own WorkerService) on this host;
- whatever ``--http-deny`` lists; ``--http-allow`` lets through what the
  built-in rules would refuse (an operator's deny still wins).

The check runs on the address actually connected to: ``GuardedBackend`` (an
httpcore network backend) resolves the name itself, refuses when ANY of its
addresses is refused (so a name cannot pass with one good and one bad
answer), and connects to the checked address, not to the name again (DNS
rebinding would otherwise swap the answer between check and connect).
Redirects are not followed by the runtime, and each connection of any
request goes through the same backend.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field

import httpcore
import psutil

from corral.errors import ValidationError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

LINK_LOCAL: tuple[Network, ...] = (
    ipaddress.ip_network("169.254.0.0/16"),
    ipaddress.ip_network("fe80::/10"),
    ipaddress.ip_network("::ffff:169.254.0.0/112"),
    # AWS's IPv6 metadata endpoint (fd00:ec2::254) lives in a unique-local block.
    ipaddress.ip_network("fd00:ec2::/32"),
)
METADATA_NAMES = frozenset(
    {
        "metadata",
        "metadata.google.internal",
        "metadata.goog",
        "metadata.azure.internal",
        "instance-data",
        "instance-data.ec2.internal",
        "metadata.packet.net",
        "metadata.platformequinix.com",
    }
)

SocketOption = (
    tuple[int, int, int] | tuple[int, int, bytes | bytearray] | tuple[int, int, None, int]
)
Resolver = Callable[[str, int], Awaitable[list[str]]]


_CIDR_CHARS = re.compile(r"[0-9A-Fa-f:./]+", re.ASCII)


class EgressRefused(httpcore.ConnectError):
    """A connection the policy refused; httpx reports it as a ConnectError with this text."""


def parse_networks(items: Iterable[str], field: str) -> tuple[Network, ...]:
    out: list[Network] = []
    for i, item in enumerate(items):
        try:
            if not _CIDR_CHARS.fullmatch(item):
                raise ValueError(item)  # ipaddress reads "8\n" as a prefix of 8
            out.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            problem = f"{item!r} is not a CIDR (e.g. 10.0.0.0/8)"
            raise ValidationError(f"{field}[{i}]", problem) from None
    return tuple(out)


def local_addresses() -> frozenset[IPAddress]:
    """Every address of this host's interfaces (where "this host's ports" are reached)."""
    found: set[IPAddress] = set()
    for addrs in psutil.net_if_addrs().values():
        for addr in addrs:
            if addr.family in (socket.AF_INET, socket.AF_INET6):
                found.add(ipaddress.ip_address(addr.address.split("%")[0]))
    return frozenset(found)


@dataclass
class EgressPolicy:
    allow: tuple[Network, ...] = ()
    deny: tuple[Network, ...] = ()
    # Ports of Corral's servers on this host; the worker adds its own once bound.
    own_ports: set[int] = field(default_factory=set)
    host_addresses: frozenset[IPAddress] = field(default_factory=local_addresses)

    def refuse_name(self, host: str) -> str | None:
        name = host.lower().rstrip(".")
        if name in METADATA_NAMES:
            return f"{host} is a cloud metadata service"
        return None

    def refuse(self, address: IPAddress, port: int) -> str | None:
        """Why a connection to ``address:port`` is refused, or None when it may go."""
        mapped = getattr(address, "ipv4_mapped", None)
        candidates = [address, mapped] if mapped is not None else [address]
        if any(a in net for a in candidates for net in self.deny if a.version == net.version):
            return f"{address} is in --http-deny"
        if any(a in net for a in candidates for net in self.allow if a.version == net.version):
            return None
        if any(a in net for a in candidates for net in LINK_LOCAL if a.version == net.version):
            return f"{address} is link-local (where cloud metadata services answer)"
        if port in self.own_ports and any(
            a.is_loopback or a.is_unspecified or a in self.host_addresses for a in candidates
        ):
            return f"{address}:{port} is one of Corral's own servers on this host"
        return None


async def system_resolve(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend, but every TCP connect is checked by ``policy`` first."""

    def __init__(
        self,
        policy: EgressPolicy,
        *,
        inner: httpcore.AsyncNetworkBackend | None = None,
        resolve: Resolver = system_resolve,
    ) -> None:
        self.policy = policy
        self.inner = inner or httpcore.AnyIOBackend()
        self.resolve = resolve

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[SocketOption] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = await self.checked(host, port)
        last: Exception | None = None
        for address in addresses:
            try:
                return await self.inner.connect_tcp(
                    address, port, timeout, local_address, socket_options
                )
            except httpcore.ConnectError as err:
                last = err
        raise last or httpcore.ConnectError(f"no address for {host}")

    async def checked(self, host: str, port: int) -> list[str]:
        """The addresses of ``host``, all of them allowed, or ``EgressRefused``."""
        why = self.policy.refuse_name(host)
        if why:
            raise EgressRefused(f"refused: {why}; allow with --http-allow")
        try:
            literal = ipaddress.ip_address(host.strip("[]").split("%")[0])
            addresses = [str(literal)]
        except ValueError:
            try:
                addresses = await self.resolve(host, port)
            except OSError as err:
                raise httpcore.ConnectError(f"cannot resolve {host}: {err}") from err
        for text in addresses:
            why = self.policy.refuse(ipaddress.ip_address(text.split("%")[0]), port)
            if why:
                raise EgressRefused(f"refused: {host} -> {why}; allow with --http-allow")
        return addresses

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[SocketOption] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise EgressRefused("refused: unix sockets are not reachable from http tasks")

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)
