"""The SSRF guard judges the addresses a name resolves to, not the name."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workers.tools.builtins.netguard import (
    DENIED_V4,
    DENIED_V6,
    BlockedAddressError,
    IPNetwork,
    NetGuard,
    embedded_ipv4,
    is_public,
    parse_networks,
)


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


def test_a_name_that_resolves_to_the_metadata_address_is_refused_without_naming_the_address() -> None:
    with pytest.raises(BlockedAddressError, match=r"resolves to a link-local \(cloud metadata\) address") as refused:
        resolving_to("169.254.169.254").checked_address("metadata.google.internal", 80)
    assert "169.254" not in str(refused.value)


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


CORPUS = Path(__file__).with_name("ssrf_corpus.txt")


def corpus(verdict: str) -> list[str]:
    lines = [line.split() for line in CORPUS.read_text().splitlines() if line.strip() and not line.startswith("#")]
    return [address for word, address in lines if word == verdict]


@pytest.mark.parametrize("address", corpus("refuse"))
def test_every_address_the_corpus_refuses_is_refused_and_never_named_in_the_refusal(address: str) -> None:
    with pytest.raises(BlockedAddressError, match="only public addresses are allowed") as refused:
        resolving_to(address).checked_address("innocent.example", 443)
    bare = address.split("%", 1)[0]
    shown = str(refused.value)
    assert bare not in shown and str(ipaddress.ip_address(bare)) not in shown
    assert embedded_ipv4_text(bare) not in shown


@pytest.mark.parametrize("address", corpus("allow"))
def test_every_address_the_corpus_allows_is_allowed(address: str) -> None:
    assert resolving_to(address).checked_address("example.com", 443) == address


def embedded_ipv4_text(address: str) -> str:
    carried = embedded_ipv4(ipaddress.ip_address(address))
    return str(carried) if carried is not None else "no IPv4 inside"


def ipv4_in(networks: tuple[IPNetwork, ...]) -> st.SearchStrategy[ipaddress.IPv4Address]:
    return st.sampled_from([n for n in networks if n.version == 4]).flatmap(
        lambda network: st.ip_addresses(network=str(network)))  # type: ignore[arg-type]


def as_ipv6(v4: ipaddress.IPv4Address, form: str) -> ipaddress.IPv6Address:
    """The IPv4 address written in each IPv6 form that carries one."""
    value = int(v4)
    return ipaddress.IPv6Address({
        "mapped": (0xFFFF << 32) | value,
        "compatible": value,
        "siit": (0xFFFF << 48) | value,
        "nat64": (0x64FF9B << 96) | value,
        "local_nat64": (0x64FF9B0001 << 80) | value,
        "6to4": (0x2002 << 112) | (value << 80) | 1,
        "isatap": (0x26064700 << 96) | (0x5EFE << 32) | value,
    }[form])


FORMS = ("mapped", "compatible", "siit", "nat64", "local_nat64", "6to4", "isatap")


@settings(max_examples=400)
@given(ipv4_in(DENIED_V4), st.sampled_from(FORMS))
def test_a_forbidden_ipv4_address_is_refused_in_every_ipv6_form_that_carries_it(
    v4: ipaddress.IPv4Address, form: str
) -> None:
    guard = NetGuard()
    assert not guard.allows(v4)
    assert not guard.allows(as_ipv6(v4, form))
    with pytest.raises(BlockedAddressError) as refused:
        resolving_to(str(as_ipv6(v4, form))).checked_address("rebind.example", 80)
    assert str(v4) not in str(refused.value) and str(as_ipv6(v4, form)) not in str(refused.value)


public_ipv4 = st.ip_addresses(v=4).filter(is_public)


@settings(max_examples=300)
@given(public_ipv4)
def test_a_public_ipv4_address_is_allowed_where_ipv6_reaches_exactly_it_and_refused_where_it_may_not(
    v4: ipaddress.IPv4Address,
) -> None:
    guard = NetGuard()
    for form in ("mapped", "nat64", "6to4", "isatap"):
        assert guard.allows(as_ipv6(v4, form)), form
    for form in ("compatible", "siit", "local_nat64"):
        assert not guard.allows(as_ipv6(v4, form)), form


@settings(max_examples=300)
@given(st.sampled_from(DENIED_V6).flatmap(lambda network: st.ip_addresses(network=str(network))))  # type: ignore[arg-type]
def test_every_address_in_a_denied_ipv6_range_is_refused(address: ipaddress.IPv6Address) -> None:
    assert not NetGuard().allows(address)


def test_an_allow_list_entry_lets_its_ipv4_through_in_the_ipv6_forms_that_reach_it_exactly() -> None:
    guard = NetGuard(tuple(parse_networks(["10.1.0.0/16"])))
    v4 = ipaddress.IPv4Address("10.1.2.3")
    assert guard.allows(as_ipv6(v4, "mapped")) and guard.allows(as_ipv6(v4, "nat64"))
    assert not guard.allows(as_ipv6(v4, "compatible")) and not guard.allows(as_ipv6(v4, "siit"))
