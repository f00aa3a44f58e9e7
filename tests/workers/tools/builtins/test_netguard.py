"""The SSRF guard judges the addresses a name resolves to, not the name."""

from __future__ import annotations

import ipaddress

import pytest

from workers.tools.builtins.netguard import BlockedAddressError, NetGuard, parse_networks


def resolving_to(*answers: str) -> NetGuard:
    return NetGuard(resolve=lambda host, port: list(answers))


def test_a_public_address_is_allowed() -> None:
    assert resolving_to("93.184.216.34").checked_address("example.com", 443) == "93.184.216.34"


@pytest.mark.parametrize("address", [
    "127.0.0.1", "127.8.9.10", "10.0.0.5", "172.16.3.4", "192.168.1.1", "169.254.169.254", "100.64.0.1", "0.0.0.0",
    "224.0.0.1", "255.255.255.255", "::1", "::", "fe80::1", "fd00:ec2::254", "::ffff:127.0.0.1",
    "::ffff:169.254.169.254", "64:ff9b::a9fe:a9fe", "2002:7f00:1::1",
])
def test_loopback_private_link_local_metadata_and_reserved_addresses_are_refused(address: str) -> None:
    with pytest.raises(BlockedAddressError, match="only public addresses are allowed"):
        resolving_to(address).checked_address("innocent.example", 80)


def test_a_name_that_resolves_to_the_metadata_address_is_refused() -> None:
    with pytest.raises(BlockedAddressError, match=r"169\.254\.169\.254, a link-local \(cloud metadata\) address"):
        resolving_to("169.254.169.254").checked_address("metadata.google.internal", 80)


def test_a_name_with_one_public_and_one_private_address_is_refused() -> None:
    with pytest.raises(BlockedAddressError):
        resolving_to("93.184.216.34", "10.0.0.1").checked_address("rebind.example", 80)


def test_an_allow_listed_network_lets_its_addresses_through_and_nothing_else() -> None:
    guard = NetGuard(tuple(parse_networks(["10.1.0.0/16"])), resolve=lambda host, port: ["10.1.2.3"])
    assert guard.checked_address("internal-api", 80) == "10.1.2.3"
    assert not guard.allows(ipaddress.ip_address("10.2.0.1"))
    assert not guard.allows(ipaddress.ip_address("127.0.0.1"))


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1", "2130706433", "0x7f.1", "::1"])
def test_loopback_spelled_any_way_is_refused_after_real_resolution(host: str) -> None:
    with pytest.raises(BlockedAddressError):
        NetGuard().checked_address(host, 80)


def test_an_allow_list_entry_that_is_not_a_network_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="allowed_networks: 'intranet' is not an IP address or network"):
        parse_networks(["10.0.0.0/8", "intranet"])
