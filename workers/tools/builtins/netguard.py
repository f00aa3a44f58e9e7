"""Which network addresses ``http_request`` may connect to (the SSRF guard).

Only globally routable unicast addresses are allowed, unless an address falls in a network the tool's
config allow-lists. The check runs on the addresses a name resolves to, and the connection is then made
to exactly the address that was checked, so a DNS answer that changes between check and connect
(rebinding) cannot redirect the request. Every redirect is checked again.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from agent2389.errors import RetryableToolError, ToolExecutionError

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
            address = _normalized(ipaddress.ip_address(answer.split("%", 1)[0]))
            if not self.allows(address):
                raise BlockedAddressError(
                    f"refused: {host!r} resolves to {address}, a {_kind(address)} address; only public "
                    "addresses are allowed unless the tool's allowed_networks lists it"
                )
        return answers[0]

    def allows(self, address: IPAddress) -> bool:
        address = _normalized(address)
        if any(address in network for network in self.allowed_networks if network.version == address.version):
            return True
        return address.is_global and not address.is_multicast


def _normalized(address: IPAddress) -> IPAddress:
    """IPv4 written as IPv6 (``::ffff:127.0.0.1``, NAT64 and 6to4 forms) is judged as the IPv4 address."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
        if address.sixtofour is not None:
            return address.sixtofour
        if address in ipaddress.ip_network("64:ff9b::/96"):
            return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address


def _kind(address: IPAddress) -> str:
    if address.is_loopback:
        return "loopback"
    if address.is_link_local:
        return "link-local (cloud metadata)"
    if address.is_private:
        return "private"
    if address.is_multicast:
        return "multicast"
    return "reserved"
