"""Where connections to database servers may go: host syntax, and the network policy that keeps
them off the platform's own database, this server's port and hosts outside the allow-list.

A host name is resolved once per new physical connection; every address it resolves to is
checked, and the driver is given the checked address, so a name that changes its answer
between the check and the connect (DNS rebinding) cannot reach a refused address.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

import idna
from sqlalchemy import make_url
from sqlalchemy.exc import ArgumentError

from backend.connections.errors import ConnectionRefusedByPolicy, TargetDatabaseError
from backend.core.config import Settings

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

MAX_HOST_LENGTH = 253
_MAX_LABEL_LENGTH = 63
_DEFAULT_PORTS = {"postgresql": 5432, "mysql": 3306, "mariadb": 3306}


def parse_ip(text: str) -> IpAddress | None:
    """An IP literal (IPv6 with or without brackets), or None."""
    candidate = text[1:-1] if text.startswith("[") and text.endswith("]") else text
    try:
        return ipaddress.ip_address(candidate)
    except ValueError:
        return None


def normalize_host(host: str) -> str:
    """A host name in its ASCII (IDNA) form, lower-cased, or an IP literal in canonical form.

    Raises ValueError with a sentence saying what is wrong (control characters, a label longer
    than 63 characters, a name longer than 253, or anything IDNA refuses).
    """
    text = host.strip()
    if not text:
        raise ValueError("the host is empty")
    address = parse_ip(text)
    if address is not None:
        return str(address)
    if any(not ch.isprintable() or ch.isspace() for ch in text):
        raise ValueError("the host holds control or space characters")
    name = text[:-1] if text.endswith(".") else text
    if name.isascii():
        ascii_name = name.lower()
    else:
        try:
            ascii_name = idna.encode(name, uts46=True).decode("ascii").lower()
        except (idna.IDNAError, UnicodeError) as exc:
            raise ValueError("the host is not a valid internationalized domain name") from exc
    if len(ascii_name) > MAX_HOST_LENGTH:
        raise ValueError(f"the host is longer than {MAX_HOST_LENGTH} characters")
    for label in ascii_name.split("."):
        if not 1 <= len(label) <= _MAX_LABEL_LENGTH:
            raise ValueError(
                f"each dot-separated part of the host has 1 to {_MAX_LABEL_LENGTH} characters"
            )
        if label.startswith("-") or label.endswith("-"):
            raise ValueError("a part of the host starts or ends with '-'")
        if not all(ch.isalnum() or ch in "-_" for ch in label):
            raise ValueError("the host holds characters a host name cannot have")
    return ascii_name


def _parse_host_rules(entries: Iterable[str]) -> tuple[tuple[str, ...], tuple[IpNetwork, ...]]:
    names: list[str] = []
    networks: list[IpNetwork] = []
    for raw in entries:
        entry = raw.strip()
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
            continue
        except ValueError:
            pass
        wildcard = entry.startswith("*.")
        names.append(("*." if wildcard else "") + normalize_host(entry[2:] if wildcard else entry))
    return tuple(names), tuple(networks)


def _parse_ports(entries: Iterable[str]) -> tuple[tuple[int, int], ...]:
    ranges: list[tuple[int, int]] = []
    for raw in entries:
        entry = raw.strip()
        if not entry:
            continue
        low, _, high = entry.partition("-")
        first, last = int(low), int(high or low)
        if not 1 <= first <= last <= 65535:
            raise ValueError(f"not a port or port range: {entry!r}")
        ranges.append((first, last))
    return tuple(ranges)


@lru_cache(maxsize=1)
def _local_addresses() -> frozenset[IpAddress]:
    """Addresses of this machine besides loopback (what its own host name resolves to)."""
    found: set[IpAddress] = set()
    try:
        for info in socket.getaddrinfo(socket.gethostname(), None):
            address = parse_ip(str(info[4][0]).split("%", 1)[0])
            if address is not None:
                found.add(address)
    except OSError:
        pass
    return frozenset(found)


def _is_this_machine(address: IpAddress) -> bool:
    mapped = getattr(address, "ipv4_mapped", None)
    if mapped is not None:
        address = mapped
    return address.is_loopback or address.is_unspecified or address in _local_addresses()


def resolve_addresses(host: str, port: int) -> list[IpAddress]:
    """Every address `host` resolves to; raises `TargetDatabaseError` (unreachable)."""
    literal = parse_ip(host)
    if literal is not None:
        return [literal]
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        raise TargetDatabaseError(
            "Could not reach the database server.", details={"kind": "unreachable"}
        ) from None
    addresses: list[IpAddress] = []
    for info in infos:
        address = parse_ip(str(info[4][0]).split("%", 1)[0])
        if address is not None and address not in addresses:
            addresses.append(address)
    if not addresses:
        raise TargetDatabaseError(
            "Could not reach the database server.", details={"kind": "unreachable"}
        )
    return addresses


@dataclass(frozen=True, slots=True)
class _Endpoint:
    host: str | None
    """None: a local socket (the same machine)."""
    port: int
    database: str


@dataclass(frozen=True, slots=True)
class NetworkPolicy:
    """Which servers connections may reach. Built from settings by `network_policy`."""

    allowed_names: tuple[str, ...]
    allowed_networks: tuple[IpNetwork, ...]
    restrict_hosts: bool
    """Only allow-listed hosts may be reached (production, or an allow-list is configured)."""
    allowed_ports: tuple[tuple[int, int], ...]
    """Empty: any port."""
    denied_networks: tuple[IpNetwork, ...]
    platform: _Endpoint | None
    """The platform's own database server, which no connection may reach."""
    own_port: int
    """The port this server listens on, refused on this machine's addresses."""

    def _refuse(self, reason: str) -> ConnectionRefusedByPolicy:
        return ConnectionRefusedByPolicy(details={"kind": "refused_by_policy", "rule": reason})

    def _name_allowed(self, host: str) -> bool:
        for rule in self.allowed_names:
            if rule.startswith("*.") and host.endswith(rule[1:]):
                return True
            if rule == host:
                return True
        return False

    def check_target(self, host: str, port: int) -> str:
        """The host in normal form, if its name and port may be used at all (no DNS).
        Raises `ConnectionRefusedByPolicy` (422)."""
        try:
            normal = normalize_host(host)
        except ValueError:
            raise self._refuse("host_syntax") from None
        if self.allowed_ports and not any(lo <= port <= hi for lo, hi in self.allowed_ports):
            raise self._refuse("port_not_allowed")
        return normal

    def check_address(self, address: IpAddress, *, name: str, port: int, database: str) -> None:
        """Raises `ConnectionRefusedByPolicy` when `address` may not be reached."""
        if any(address in network for network in self.denied_networks):
            raise self._refuse("address_denied")
        if (
            self.restrict_hosts
            and not self._name_allowed(name)
            and not any(address in network for network in self.allowed_networks)
        ):
            raise self._refuse("host_not_allowed")
        if port == self.own_port and _is_this_machine(address):
            raise self._refuse("platform_server")
        platform = self.platform
        if (
            platform is not None
            and port == platform.port
            and platform.database.lower() == database.lower()
            and self._is_platform_host(address)
        ):
            raise self._refuse("platform_database")

    def _is_platform_host(self, address: IpAddress) -> bool:
        platform = self.platform
        assert platform is not None  # noqa: S101 - checked by the caller
        if platform.host is None:
            return _is_this_machine(address)
        try:
            platform_addresses = resolve_addresses(platform.host, platform.port)
        except TargetDatabaseError:
            platform_addresses = []
        if address in platform_addresses:
            return True
        # Loopback, unspecified and this machine's own addresses all reach a local server.
        return _is_this_machine(address) and any(_is_this_machine(a) for a in platform_addresses)

    def pick_address(self, host: str, port: int, database: str) -> str:
        """Check the target and every address its name resolves to; the address to connect
        to. Raises `ConnectionRefusedByPolicy` (422) or `TargetDatabaseError` (unreachable)."""
        normal = self.check_target(host, port)
        addresses = resolve_addresses(normal, port)
        for address in addresses:
            self.check_address(address, name=normal, port=port, database=database)
        return str(addresses[0])

    def check_if_resolvable(self, host: str, port: int, database: str) -> None:
        """As `pick_address`, but a name that does not resolve (yet) passes: saving a
        connection does not need the server to be up."""
        try:
            self.pick_address(host, port, database)
        except TargetDatabaseError:
            self.check_target(host, port)


def _platform_endpoint(database_url: str) -> _Endpoint | None:
    try:
        url = make_url(database_url)
    except ArgumentError:
        return None
    backend = url.get_backend_name()
    if backend not in _DEFAULT_PORTS or not url.database:
        return None
    return _Endpoint(
        host=url.host or None, port=url.port or _DEFAULT_PORTS[backend], database=url.database
    )


def network_policy(settings: Settings) -> NetworkPolicy:
    """The policy the settings describe (see the README's *Network policy*)."""
    names, networks = _parse_host_rules(settings.connection_allowed_hosts)
    _, denied = _parse_host_rules(settings.connection_denied_networks)
    return NetworkPolicy(
        allowed_names=names,
        allowed_networks=networks,
        restrict_hosts=settings.production or bool(names or networks),
        allowed_ports=_parse_ports(settings.connection_allowed_ports),
        denied_networks=denied,
        platform=_platform_endpoint(str(settings.database_url)),
        own_port=settings.port,
    )
