"""Which addresses sitrep may fetch from, checked on the address each connection actually goes to.

A feed's author, or a page's redirect, decides what sitrep fetches; without a check they could point it
at the cloud metadata service (169.254.169.254), a database on localhost or an intranet wiki, and the
reply would be ingested and quoted in answers. So every connection is made by :class:`GuardedBackend`:
it resolves the host once, refuses the whole host when any of its addresses is loopback, private,
link-local, carrier-grade NAT, multicast, reserved or unspecified (IPv4 inside IPv6 included), and then
connects to exactly an address it checked. A DNS answer that changes between a check and the connection
(rebinding) therefore cannot slip through, and TLS still verifies the certificate against the URL's host
name, because only the socket address is chosen here.

``SITREP_FETCH_ALLOW`` (a :class:`FetchAllow`) names hosts and networks that may be private: intranet feeds.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpcore
import httpx

from retrieval.errors import SourceError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], Sequence[str]]

ALLOW_SETTING = "SITREP_FETCH_ALLOW"
_CGNAT = ipaddress.IPv4Network("100.64.0.0/10")
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")  # RFC 6052: the IPv4 address is the last 32 bits
_NAT64_LOCAL = ipaddress.IPv6Network("64:ff9b:1::/48")  # RFC 8215: local-use translation, always inside
_IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")  # deprecated ::a.b.c.d form
# Never a place to fetch from, whatever the allowlist says: 0.0.0.0 reaches this machine on Linux.
_NEVER = ("the unspecified address", "a multicast address")
_LABEL = r"[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?"
_HOST_NAME = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(\.{_LABEL})*$")
# What inet_aton accepts besides dotted quads: 2130706433, 0x7f000001, 0177.0.0.1, 127.1.
_NUMERIC_HOST = re.compile(r"^(0x[0-9a-f]+|[0-9]+)(\.(0x[0-9a-f]+|[0-9]+)){0,3}$", re.IGNORECASE)


class FetchRefusedError(SourceError):
    """A fetch that the guard stopped: a forbidden address or scheme, or too many redirects."""


@dataclass(frozen=True)
class FetchAllow:
    """Hosts (exact names) and networks that fetches may reach although they are not public."""

    hosts: frozenset[str] = frozenset()
    networks: tuple[IPNetwork, ...] = field(default=())

    def allows_host(self, host: str) -> bool:
        """Whether ``host`` (a name from a URL) is listed by name."""
        return _normal_host(host) in self.hosts

    def allows_address(self, address: IPAddress) -> bool:
        """Whether ``address``, or the IPv4 address inside it, lies in a listed network."""
        candidates = [address, *filter(None, [embedded_ipv4(address)])]
        return any(a in net for a in candidates for net in self.networks if a.version == net.version)

    def __str__(self) -> str:
        return ",".join([*sorted(self.hosts), *(str(net) for net in self.networks)])


NOTHING_ALLOWED = FetchAllow()


def parse_allow(entries: Iterable[str]) -> FetchAllow:
    """A :class:`FetchAllow` from host names, IP addresses and CIDRs (``10.20.0.0/16``, ``fd00::/8``).

    Raises ValueError naming the first entry that is none of these.
    """
    hosts: set[str] = set()
    networks: list[IPNetwork] = []
    for raw in entries:
        entry = raw.strip()
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
            continue
        except ValueError:
            pass
        host = _normal_host(entry)
        if "/" in entry or _NUMERIC_HOST.match(host) or not _HOST_NAME.match(host):
            raise ValueError(f"{entry!r} is not a host name, an IP address or a CIDR network such as 10.0.0.0/8")
        hosts.add(host)
    return FetchAllow(frozenset(hosts), tuple(networks))


def embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries (mapped, compatible, 6to4, NAT64, Teredo), if any."""
    if not isinstance(address, ipaddress.IPv6Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if address in _NAT64 or (address in _IPV4_COMPATIBLE and int(address) > 1):  # :: and ::1 are not IPv4
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def address_problem(address: IPAddress) -> str | None:
    """Why sitrep must not connect to ``address`` (e.g. ``"a loopback address"``), or None for a public one."""
    inner = embedded_ipv4(address)
    if inner is not None:
        problem = address_problem(inner)
        if problem is not None:
            return problem
    if address.is_unspecified:
        return "the unspecified address"
    if address.is_loopback:
        return "a loopback address"
    if address.is_link_local:
        return "a link-local address"
    if address in _CGNAT:
        return "a carrier-grade NAT address"
    if address.is_multicast:
        return "a multicast address"
    if isinstance(address, ipaddress.IPv6Address) and (address.is_site_local or address in _NAT64_LOCAL):
        return "a private address"
    if inner is not None and (address.ipv4_mapped is not None or address in _NAT64 or address in _IPV4_COMPATIBLE):
        return None  # the IPv4 address inside decides, and it is public
    if address.is_reserved:
        return "a reserved address"
    if address.is_private:
        return "a private address"
    if not address.is_global:
        return "not a public address"
    return None


def numeric_host(host: str) -> IPAddress | None:
    """The address a URL's host denotes when it is written as a number (any form ``inet_aton`` reads, or IPv6)."""
    host = host.strip("[]")
    try:
        return ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        pass
    if not _NUMERIC_HOST.match(host):
        return None
    try:
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except OSError:
        return None


def resolve(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to for a TCP connection, in the resolver's order, without repeats."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


@dataclass(frozen=True)
class FetchGuard:
    """The fetch policy: the allowlist, and how host names are resolved (replaceable in tests)."""

    allow: FetchAllow = NOTHING_ALLOWED
    resolver: Resolver = resolve

    def check_host(self, host: str) -> None:
        """Refuse a host written as a forbidden address (``127.1``, ``2130706433``, ``[::ffff:127.0.0.1]``).

        Host names are checked when connecting, on the addresses they resolve to then.
        """
        address = numeric_host(host)
        if address is not None:
            self.check_address(host, address)

    def check_address(self, host: str, address: IPAddress) -> None:
        """Raise FetchRefusedError unless ``host`` may be reached at ``address``."""
        problem = address_problem(address)
        if problem is None or (problem not in _NEVER and (self.allow.allows_host(host)
                                                           or self.allow.allows_address(address))):
            return
        inner = embedded_ipv4(address)
        culprit = inner if inner is not None and address_problem(inner) else address
        shown = f"{host} is {culprit}" if _normal_host(host) != str(culprit) else str(culprit)
        raise FetchRefusedError(host, f"{shown}, {problem}; sitrep fetches only from public addresses "
                                      f"(list intranet hosts or networks in {ALLOW_SETTING})")

    def checked_addresses(self, host: str, port: int) -> list[IPAddress]:
        """Resolve ``host`` once and return its addresses, or refuse the host if any of them is forbidden."""
        try:
            found = self.resolver(host, port)
        except OSError as exc:  # socket.gaierror: the name does not resolve
            raise httpcore.ConnectError(f"name resolution failed for {host}: {exc}") from exc
        addresses = [ipaddress.ip_address(a.split("%", 1)[0]) for a in found]
        if not addresses:
            raise httpcore.ConnectError(f"name resolution failed for {host}: no addresses")
        for address in addresses:
            self.check_address(host, address)
        return addresses


class GuardedBackend(httpcore.NetworkBackend):
    """httpcore's network backend, connecting only to addresses the guard checked (TLS is unchanged)."""

    def __init__(self, guard: FetchGuard) -> None:
        self.guard = guard
        self._plain = httpcore.SyncBackend()

    def connect_tcp(self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
                    socket_options: Iterable[Any] | None = None) -> httpcore.NetworkStream:
        last_error: Exception | None = None
        for address in self.guard.checked_addresses(host, port):
            try:
                return self._plain.connect_tcp(str(address), port, timeout=timeout, local_address=local_address,
                                               socket_options=socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:  # try the host's next address
                last_error = exc
        assert last_error is not None  # checked_addresses never returns an empty list
        raise last_error

    def connect_unix_socket(self, path: str, timeout: float | None = None,
                            socket_options: Iterable[Any] | None = None) -> httpcore.NetworkStream:
        raise FetchRefusedError(path, "sitrep does not fetch over Unix sockets")

    def sleep(self, seconds: float) -> None:
        self._plain.sleep(seconds)


def guarded_transport(guard: FetchGuard) -> httpx.HTTPTransport:
    """An httpx transport whose every connection goes through :class:`GuardedBackend`, with no proxy.

    httpx has no public way to give its transport a network backend, so the transport's connection pool
    is replaced by one built (with httpcore's public API) around the guarded backend. Proxies from the
    environment are not used: through a proxy, the guard would only ever see the proxy's address.
    """
    transport = httpx.HTTPTransport(trust_env=False)
    limits = httpx.Limits()
    transport._pool = httpcore.ConnectionPool(
        ssl_context=httpx.create_ssl_context(),  # SSL_CERT_FILE and SSL_CERT_DIR still count
        max_connections=limits.max_connections,
        max_keepalive_connections=limits.max_keepalive_connections,
        keepalive_expiry=limits.keepalive_expiry,
        network_backend=GuardedBackend(guard),
    )
    return transport


def _normal_host(host: str) -> str:
    return host.strip().strip("[]").rstrip(".").lower()
