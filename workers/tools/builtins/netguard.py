"""Which network addresses ``http_request`` may connect to (the SSRF guard).

Only globally routable unicast addresses are allowed, unless an address falls in a network the tool's
config allow-lists. The check runs on the addresses a name resolves to, and the connection is then made
to exactly the address that was checked, so a DNS answer that changes between check and connect
(rebinding) cannot redirect the request. Every redirect is checked again.

The ranges are our own list (below), not only :mod:`ipaddress`'s flags, which change between Python
versions and call some of these "global" (site-local ``fec0::/10``, IPv4-compatible ``::a.b.c.d``).
An IPv6 address that carries an IPv4 address (mapped, NAT64, 6to4, ISATAP) is judged by that IPv4
address too. A refusal never says which address a name resolved to: that would map the internal
network for whoever asks.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from agent2389.protocol.errors import RetryableToolError, ToolExecutionError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], Sequence[str]]


class BlockedAddressError(ToolExecutionError):
    """The destination is not one the tool may reach."""


def parse_networks(entries: Iterable[str]) -> list[IPNetwork]:
    """``["127.0.0.1/32", "10.1.0.0/16", "::1"]``; a ValueError names the bad entry."""
    networks = []
    for entry in entries:
        try:
            networks.append(ipaddress.ip_network(str(entry), strict=False))
        except ValueError:
            raise ValueError(f"allowed_networks: {entry!r} is not an IP address or network") from None
    return networks


def system_resolver(host: str, port: int) -> list[str]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        raise RetryableToolError(f"could not resolve host {host!r}") from None
    return [str(info[4][0]) for info in infos]


def _networks(*entries: str) -> tuple[IPNetwork, ...]:
    return tuple(ipaddress.ip_network(entry) for entry in entries)


DENIED_V4 = _networks(
    "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12",
    "192.0.0.0/24", "192.0.2.0/24", "192.88.99.0/24", "192.168.0.0/16", "198.18.0.0/15", "198.51.100.0/24",
    "203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4",
)
# IPv6 forms that carry an IPv4 address but reach whatever the local network makes of it.
IPV4_IN_IPV6_DENIED = _networks(
    "::/96",             # unspecified, loopback and IPv4-compatible (::127.0.0.1)
    "::ffff:0:0:0/96",   # SIIT (::ffff:0:a.b.c.d)
    "64:ff9b:1::/48",    # local-use NAT64
)
DENIED_V6 = IPV4_IN_IPV6_DENIED + _networks(
    "100::/64", "2001::/23", "2001:db8::/32", "3fff::/20", "5f00::/16", "fc00::/7", "fe80::/10", "fec0::/10",
    "ff00::/8",
)
IPV4_MAPPED = ipaddress.IPv6Network("::ffff:0:0/96")
NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_ISATAP_IDS = (0x00005EFE, 0x02005EFE)


def embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries, if any: ``::ffff:a.b.c.d``, ``::a.b.c.d``,
    ``::ffff:0:a.b.c.d``, ``64:ff9b::a.b.c.d``, ``64:ff9b:1::…``, ``2002:AABB:CCDD::`` or ISATAP."""
    if isinstance(address, ipaddress.IPv4Address):
        return None
    value = int(address)
    low32 = ipaddress.IPv4Address(value & 0xFFFFFFFF)
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in NAT64 or any(address in network for network in IPV4_IN_IPV6_DENIED):
        return low32
    if (value >> 32) & 0xFFFFFFFF in _ISATAP_IDS:
        return low32
    return None


def is_public(address: IPAddress) -> bool:
    """Globally routable unicast, by our list and by :mod:`ipaddress`, whichever is stricter."""
    denied = DENIED_V4 if address.version == 4 else DENIED_V6
    if any(address in network for network in denied) or address.is_multicast or not address.is_global:
        return False
    return not (isinstance(address, ipaddress.IPv6Address) and address.is_site_local)


@dataclass(frozen=True)
class NetGuard:
    allowed_networks: tuple[IPNetwork, ...] = ()
    resolve: Resolver = system_resolver

    def checked_address(self, host: str, port: int) -> str:
        """The address to connect to for ``host``; BlockedAddressError if any of its addresses is forbidden.

        Every answer must pass: a name that resolves to one public and one private address is refused,
        or a client that tries addresses in turn could be steered to the private one.
        """
        answers = self.resolve(host, port)
        if not answers:
            raise RetryableToolError(f"host {host!r} has no addresses")
        for answer in answers:
            address = ipaddress.ip_address(answer.split("%", 1)[0])
            if not self.allows(address):
                raise BlockedAddressError(
                    f"refused: {host!r} resolves to a {_kind(address)} address; only public addresses are "
                    "allowed unless the tool's allowed_networks lists it"
                )
        return answers[0]

    def allows(self, address: IPAddress) -> bool:
        if self._listed(address):
            return True
        carried = embedded_ipv4(address)
        if address.version == 6 and (address in IPV4_MAPPED or address in NAT64 or address.sixtofour is not None):
            return carried is not None and self.allows(carried)  # these reach exactly the IPv4 address
        if carried is not None and not (self._listed(carried) or is_public(carried)):
            return False
        return is_public(address)

    def _listed(self, address: IPAddress) -> bool:
        return any(address in network for network in self.allowed_networks if network.version == address.version)


def _kind(address: IPAddress) -> str:
    judged = embedded_ipv4(address) or address
    if isinstance(address, ipaddress.IPv6Address) and any(address in net for net in IPV4_IN_IPV6_DENIED):
        return "reserved (IPv4-in-IPv6)"
    if judged.is_loopback:
        return "loopback"
    if judged.is_link_local:
        return "link-local (cloud metadata)"
    if judged.is_private or (isinstance(judged, ipaddress.IPv6Address) and judged.is_site_local):
        return "private"
    if judged.is_multicast:
        return "multicast"
    return "reserved"
