"""THREATS E6: a connector reaches only the hosts it declared."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from gateway.egress import HostPattern, host_allowed, parse_host_patterns
from tests.gateway.egress.fakes import MakeClient, Upstream, admitting, get, refused


@pytest.mark.parametrize(
    ("patterns", "host", "port", "allowed"),
    [
        (["api.example.com"], "api.example.com", 443, True),
        (["api.example.com"], "API.Example.COM.", 8080, True),
        (["api.example.com"], "example.com", 443, False),
        (["api.example.com"], "api.example.com.evil.test", 443, False),
        (["*.example.com"], "a.example.com", 443, True),
        (["*.example.com"], "a.b.c.example.com", 443, True),
        (["*.example.com"], "example.com", 443, False),
        (["*.example.com"], "evilexample.com", 443, False),
        (["*.example.com"], "example.com.evil.test", 443, False),
        (["api.example.com:8443"], "api.example.com", 8443, True),
        (["api.example.com:8443"], "api.example.com", 443, False),
        (["*.example.com:443"], "x.example.com", 443, True),
        (["*.example.com:443"], "x.example.com", 80, False),
        (["[::1]:8080"], "::1", 8080, True),
        (["[::1]:8080"], "[::1]", 8080, True),
        (["[::1]:8080"], "::1", 8081, False),
        (["[::1]"], "0:0:0:0:0:0:0:1", 1, True),
        (["127.0.0.1"], "127.0.0.1", 9, True),
        (["127.0.0.1"], "127.0.0.2", 9, False),
        (["bücher.example"], "xn--bcher-kva.example", 443, True),
        (["*.XN--BCHER-KVA.example"], "shop.bücher.example", 443, True),
        ([], "api.example.com", 443, False),
    ],
)
def test_e6_host_patterns(patterns: list[str], host: str, port: int, allowed: bool) -> None:
    assert host_allowed(host, port, parse_host_patterns(patterns)) is allowed


def test_e6_no_allow_list_means_any_host() -> None:
    assert host_allowed("anything.test", 1, None)
    assert parse_host_patterns(None) is None


@pytest.mark.parametrize(
    "text", ["*", "*.", "a.*.com", "*example.com", "*.1.2.3.4", "[::1", "a:0", "a:x", "a b", ""]
)
def test_e6_bad_patterns_name_the_entry(text: str) -> None:
    with pytest.raises(ValueError, match="allowed host"):
        HostPattern.parse(text)


async def test_e6_undeclared_host_is_refused_before_sending(
    make_client: MakeClient, upstream: Upstream
) -> None:
    client = make_client(admitting(upstream), names={"evil.example": "127.0.0.1"})
    url = f"http://evil.example:{upstream.port}/echo"
    error = await refused(get(client, url, allowed_hosts=("api.example.com",)))
    assert error.code == "egress_refused"
    assert error.message == "host evil.example is not in the connector's allowed_hosts"
    assert upstream.seen == []
    assert error.trace[0].status is None
    assert error.trace[0].error == "egress_refused"


async def test_e6_wrong_port_is_refused(make_client: MakeClient, upstream: Upstream) -> None:
    client = make_client(admitting(upstream), names={"api.example.com": "127.0.0.1"})
    url = f"http://api.example.com:{upstream.port}/echo"
    error = await refused(get(client, url, allowed_hosts=("api.example.com:1",)))
    assert error.message == (
        f"port {upstream.port} of host api.example.com is not in the connector's allowed_hosts"
    )
    assert upstream.seen == []


async def test_e6_empty_allow_list_reaches_nothing(
    make_client: MakeClient, upstream: Upstream
) -> None:
    client = make_client(admitting(upstream))
    error = await refused(get(client, f"{upstream.origin}/echo", allowed_hosts=()))
    assert error.code == "egress_refused"
    assert upstream.seen == []


async def test_e6_redirect_to_undeclared_host_is_refused(
    make_client: MakeClient, upstream: Upstream
) -> None:
    names = {"api.example.com": "127.0.0.1", "exfil.test": "127.0.0.1"}
    client = make_client(admitting(upstream), names=names)
    target = quote(f"http://exfil.test:{upstream.port}/echo", safe="")
    url = f"http://api.example.com:{upstream.port}/redirect?to={target}"
    error = await refused(get(client, url, allowed_hosts=("*.example.com",)))
    assert error.message == "host exfil.test is not in the connector's allowed_hosts"
    assert len(upstream.seen) == 1
    assert [e.status for e in error.trace] == [302, None]


async def test_e6_declared_host_is_reached(make_client: MakeClient, upstream: Upstream) -> None:
    client = make_client(admitting(upstream), names={"api.example.com": "127.0.0.1"})
    url = f"http://API.example.com:{upstream.port}/echo"
    response = await get(client, url, allowed_hosts=("*.EXAMPLE.com", "other.test"))
    assert response.status == 200
