"""`connect_to` routes (`GATEWAY_EGRESS_CONNECT_TO`, `--connect-to`): a name on another port."""

from __future__ import annotations

import json
import re

import pytest

from gateway.egress import AddressPolicy
from gateway.settings import SettingsError, load_settings
from tests.gateway.egress.fakes import FakeResolver, MakeClient, Upstream, get, refused


def test_routes_parse_as_curl_writes_them() -> None:
    policy = AddressPolicy(
        connect_to=(
            "API.example.com:443:127.0.0.1:8443",
            "two.test:80:[::1]:8080",
            "three.test:443:backend.test:",
            "four.test:443::8443",
        )
    )
    assert policy.routed("api.example.com.", 443) == ("127.0.0.1", 8443)
    assert policy.routed("api.example.com", 80) is None
    assert policy.routed("two.test", 80) == ("::1", 8080)
    assert policy.routed("three.test", 443) == ("backend.test", 443)
    assert policy.routed("four.test", 443) == ("four.test", 8443)


@pytest.mark.parametrize(
    ("entry", "named"),
    [
        ("api.example.com:443", "'api.example.com:443'"),
        ("api.example.com:443:127.0.0.1", "'api.example.com:443:127.0.0.1'"),
        ("api.example.com:https:127.0.0.1:8443", "'api.example.com:https:127.0.0.1:8443'"),
        ("api.example.com:443:127.0.0.1:0", "'api.example.com:443:127.0.0.1:0'"),
        ("api.example.com:443::", "both empty"),
        ("127.0.0.2:443:127.0.0.1:8443", "names, not to IP addresses"),
        ("a b:443:127.0.0.1:8443", "'a b:443:127.0.0.1:8443'"),
        ("api.example.com:443:[::1:8443", "bad [IPv6] brackets"),
    ],
)
def test_bad_routes_fail_fast_naming_the_entry(entry: str, named: str) -> None:
    with pytest.raises(ValueError, match=re.escape(named)):
        AddressPolicy(connect_to=(entry,))


def test_a_name_routed_twice_is_refused() -> None:
    with pytest.raises(ValueError, match=r"routes a\.test:1 twice"):
        AddressPolicy(connect_to=("a.test:1:127.0.0.1:2", "A.test:1:127.0.0.1:3"))


def test_the_setting_is_a_comma_list_and_a_bad_entry_names_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GATEWAY_EGRESS_CONNECT_TO", "a.test:443:127.0.0.1:8443, b.test:80::81")
    assert load_settings().egress_connect_to == ("a.test:443:127.0.0.1:8443", "b.test:80::81")
    monkeypatch.setenv("GATEWAY_EGRESS_CONNECT_TO", "a.test:443")
    with pytest.raises(SettingsError, match=r"GATEWAY_EGRESS_CONNECT_TO: .*'a\.test:443'"):
        load_settings()


async def test_route_reaches_the_fake_on_another_port_with_the_url_as_written(
    make_client: MakeClient, upstream: Upstream
) -> None:
    route = f"api.example.com:80:127.0.0.1:{upstream.port}"
    client = make_client(AddressPolicy(allowed_networks=(upstream.endpoint,), connect_to=(route,)))
    response = await get(client, "http://api.example.com/echo", allowed_hosts=("api.example.com",))
    assert response.status == 200
    assert json.loads(response.body)["host"] == "api.example.com"
    assert upstream.seen[0].headers["Host"] == "api.example.com"
    assert [entry.url for entry in response.trace] == ["http://api.example.com/echo"]


async def test_the_dialled_address_is_still_checked(
    make_client: MakeClient, upstream: Upstream
) -> None:
    client = make_client(
        AddressPolicy(connect_to=(f"api.example.com:80:127.0.0.1:{upstream.port}",))
    )
    error = await refused(get(client, "http://api.example.com/echo"))
    assert error.code == "egress_refused"
    assert "address 127.0.0.1 is loopback" in error.message
    assert upstream.seen == []


async def test_an_allowed_endpoint_admits_its_port_only(
    make_client: MakeClient, upstream: Upstream
) -> None:
    # The allowed endpoint is the upstream's port; a route to another loopback port is refused.
    route = f"api.example.com:80:127.0.0.1:{upstream.port + 1}"
    client = make_client(AddressPolicy(allowed_networks=(upstream.endpoint,), connect_to=(route,)))
    error = await refused(get(client, "http://api.example.com/echo"))
    assert error.code == "egress_refused"


async def test_route_applies_to_its_port_only(make_client: MakeClient, upstream: Upstream) -> None:
    route = f"api.example.com:443:127.0.0.1:{upstream.port}"
    client = make_client(AddressPolicy(allowed_networks=(upstream.endpoint,), connect_to=(route,)))
    error = await refused(get(client, "http://api.example.com/echo"))  # port 80: not routed
    assert error.code == "upstream_unreachable"
    assert error.message == "host api.example.com could not be resolved"


async def test_route_to_a_name_resolves_it_on_the_target_port(
    make_client: MakeClient, upstream: Upstream
) -> None:
    resolver = FakeResolver({"backend.test": "127.0.0.1"})
    route = f"api.example.com:80:backend.test:{upstream.port}"
    client = make_client(
        AddressPolicy(allowed_networks=(upstream.endpoint,), connect_to=(route,)),
        resolver=resolver,
    )
    response = await get(client, "http://api.example.com/echo")
    assert response.status == 200
    assert resolver.calls == [("backend.test", upstream.port)]


async def test_route_to_a_pinned_name_uses_the_pin(
    make_client: MakeClient, upstream: Upstream
) -> None:
    policy = AddressPolicy(
        allowed_networks=(upstream.endpoint,),
        resolve=(f"backend.test:{upstream.port}:127.0.0.1",),
        connect_to=(f"api.example.com:80:backend.test:{upstream.port}",),
    )
    response = await get(make_client(policy), "http://api.example.com/echo")
    assert response.status == 200
