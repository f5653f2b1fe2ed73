"""The operator's settings: `allowed_networks` and `resolve` parsing, and pinning at work."""

from __future__ import annotations

import json
from ipaddress import ip_address

import pytest

from gateway.egress import AddressPolicy
from tests.gateway.egress.fakes import MakeClient, Upstream, admitting, get, refused


def test_policy_parses_networks_endpoints_and_pins() -> None:
    policy = AddressPolicy(
        allowed_networks=("10.1.0.0/16", "127.0.0.1:8081", "[::1]:8081", "::1", "192.0.2.7"),
        resolve=("API.example.com:443:127.0.0.1", "two.test:80:[::1], 127.0.0.2"),
    )
    assert policy.pinned("api.example.com", 443) == (ip_address("127.0.0.1"),)
    assert policy.pinned("api.example.com.", 443) == (ip_address("127.0.0.1"),)
    assert policy.pinned("api.example.com", 80) is None
    assert policy.pinned("two.test", 80) == (ip_address("::1"), ip_address("127.0.0.2"))
    assert policy.admits_explicitly(ip_address("192.0.2.7"), 1)


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"allowed_networks": ("10.1.2.3/16",)}, "'10.1.2.3/16'"),
        ({"allowed_networks": ("localhost:8080",)}, "'localhost:8080'"),
        ({"allowed_networks": ("127.0.0.1:0",)}, "'127.0.0.1:0'"),
        ({"allowed_networks": ("[::1:80",)}, "'[::1:80'"),
        ({"allowed_networks": ("",)}, "''"),
        ({"resolve": ("api.example.com:443",)}, "'api.example.com:443'"),
        ({"resolve": ("api.example.com:https:127.0.0.1",)}, "'api.example.com:https:127.0.0.1'"),
        ({"resolve": ("api.example.com:443:not-an-ip",)}, "'api.example.com:443:not-an-ip'"),
        ({"resolve": ("1.2.3.4:443:127.0.0.1",)}, "'1.2.3.4:443:127.0.0.1'"),
        ({"resolve": ("a b:443:127.0.0.1",)}, "'a b:443:127.0.0.1'"),
        ({"resolve": ("a.test:1:127.0.0.1", "A.test:1:127.0.0.2")}, "pins a.test:1 twice"),
    ],
)
def test_bad_entries_fail_fast_naming_the_entry(options: dict[str, object], named: str) -> None:
    with pytest.raises(ValueError, match=named.replace("[", r"\[")):
        AddressPolicy(**options)  # type: ignore[arg-type]


async def test_resolve_pin_reaches_the_local_fake_with_the_real_host_header(
    make_client: MakeClient, upstream: Upstream
) -> None:
    pin = f"api.example.com:{upstream.port}:127.0.0.1"
    client = make_client(admitting(upstream, resolve=(pin,)))
    url = f"http://api.example.com:{upstream.port}/echo"
    response = await get(client, url, allowed_hosts=("api.example.com",))
    assert json.loads(response.body)["host"] == f"api.example.com:{upstream.port}"
    assert upstream.seen[0].headers["Host"] == f"api.example.com:{upstream.port}"


async def test_pinned_address_is_still_checked(make_client: MakeClient, upstream: Upstream) -> None:
    pin = f"api.example.com:{upstream.port}:127.0.0.1"
    client = make_client(AddressPolicy(resolve=(pin,)))
    error = await refused(get(client, f"http://api.example.com:{upstream.port}/echo"))
    assert error.code == "egress_refused"
    assert "address 127.0.0.1 is loopback" in error.message
    assert upstream.seen == []


async def test_pin_applies_to_its_port_only(make_client: MakeClient, upstream: Upstream) -> None:
    pin = f"api.example.com:{upstream.port + 1}:127.0.0.1"
    client = make_client(admitting(upstream, resolve=(pin,)))  # fake DNS knows no names
    error = await refused(get(client, f"http://api.example.com:{upstream.port}/echo"))
    assert error.code == "upstream_unreachable"
    assert error.message == "host api.example.com could not be resolved"


async def test_allow_private_reaches_loopback(make_client: MakeClient, upstream: Upstream) -> None:
    client = make_client(AddressPolicy(allow_private=True))
    assert (await get(client, f"{upstream.origin}/echo")).status == 200
