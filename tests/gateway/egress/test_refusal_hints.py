"""Refusals name what would allow the call: the connector's hosts, or `script run`'s flags."""

from __future__ import annotations

import pytest

from gateway.egress import AddressPolicy, EgressClient, RefusalHints
from gateway.scriptrun import HINTS
from tests.gateway.egress.fakes import FakeResolver, Upstream, get, refused


@pytest.mark.parametrize(
    ("address", "port", "hint"),
    [
        ("127.0.0.1", 8080, " (add --allow-private-network, or --allow-network 127.0.0.1:8080)"),
        ("10.1.2.3", 443, " (add --allow-private-network, or --allow-network 10.1.2.3:443)"),
        ("::1", 80, " (add --allow-private-network, or --allow-network [::1]:80)"),
        ("100.64.0.1", 80, " (add --allow-network 100.64.0.1:80)"),
        ("192.0.2.7", 80, " (add --allow-network 192.0.2.7:80)"),
        ("169.254.169.254", 80, ""),
        ("0.0.0.0", 80, ""),  # noqa: S104 - an address refused, not bound
        ("224.0.0.1", 80, ""),
        ("not an address", 80, ""),
    ],
)
def test_script_run_names_the_flag_that_admits_an_address(
    address: str, port: int, hint: str
) -> None:
    assert HINTS.address(address, port) == hint


def test_the_service_adds_nothing_to_address_refusals() -> None:
    assert RefusalHints().address("127.0.0.1", 80) == ""


async def test_script_run_hints_name_allow_host(upstream: Upstream) -> None:
    policy = AddressPolicy(allowed_networks=(upstream.endpoint,))
    async with EgressClient(policy, resolver=FakeResolver({}), hints=HINTS) as client:
        other = await refused(get(client, f"{upstream.origin}/echo", allowed_hosts=("a.test",)))
        port = await refused(get(client, f"{upstream.origin}/echo", allowed_hosts=("127.0.0.1:1",)))
    assert other.message == "host 127.0.0.1 is not allowed (add --allow-host 127.0.0.1)"
    assert port.message == (
        f"port {upstream.port} of host 127.0.0.1 is not allowed "
        f"(add --allow-host 127.0.0.1:{upstream.port})"
    )


async def test_an_ipv6_host_is_named_in_brackets_with_its_port() -> None:
    async with EgressClient(AddressPolicy(), resolver=FakeResolver({}), hints=HINTS) as client:
        error = await refused(get(client, "http://[::1]:8080/", allowed_hosts=("[::1]:1",)))
    assert error.message == "port 8080 of host ::1 is not allowed (add --allow-host [::1]:8080)"


async def test_script_run_hints_name_the_address_flags(upstream: Upstream) -> None:
    async with EgressClient(AddressPolicy(), resolver=FakeResolver({}), hints=HINTS) as client:
        error = await refused(get(client, f"{upstream.origin}/echo"))
    assert error.code == "egress_refused"
    assert error.message == (
        "connection to 127.0.0.1 refused by the egress policy: address 127.0.0.1 is loopback "
        f"(add --allow-private-network, or --allow-network 127.0.0.1:{upstream.port})"
    )
    assert upstream.seen == []


async def test_the_service_names_the_connectors_allowed_hosts(upstream: Upstream) -> None:
    async with EgressClient(AddressPolicy(), resolver=FakeResolver({})) as client:
        host = await refused(get(client, f"{upstream.origin}/echo", allowed_hosts=()))
        address = await refused(get(client, f"{upstream.origin}/echo"))
    assert host.message == "host 127.0.0.1 is not in the connector's allowed_hosts"
    assert address.message == (
        "connection to 127.0.0.1 refused by the egress policy: address 127.0.0.1 is loopback"
    )
