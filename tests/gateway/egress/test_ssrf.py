"""THREATS E1-E3: the address check, on literal forms and on the address actually dialled."""

from __future__ import annotations

import json
import socket

import pytest

from gateway.egress import (
    AddressPolicy,
    EgressRefusedError,
    check_address,
    check_url_literal,
    literal_address,
    make_socket_factory,
    parse_ipv4_literal,
)
from tests.gateway.egress.fakes import (
    FakeResolver,
    MakeClient,
    StartUpstream,
    Upstream,
    admitting,
    get,
    refused,
)
from tests.netns import run_python_module_in_netns, unavailable_reason

# (URL, words the refusal must contain). Every form names an address that is not
# globally routable, spelled the ways getaddrinfo/inet_aton and IPv6 transition allow.
REFUSED_FORMS: list[tuple[str, str]] = [
    ("http://127.0.0.1/", "127.0.0.1 is loopback"),
    ("http://127.0.0.1:8080/x", "127.0.0.1 is loopback"),
    ("http://127.1/", "127.0.0.1 is loopback"),
    ("http://127.0.1/", "127.0.0.1 is loopback"),
    ("http://2130706433/", "127.0.0.1 is loopback"),
    ("http://0x7f000001/", "127.0.0.1 is loopback"),
    ("http://0x7f.0.0.1/", "127.0.0.1 is loopback"),
    ("http://0177.0.0.1/", "127.0.0.1 is loopback"),
    ("http://0177.1/", "127.0.0.1 is loopback"),
    ("http://127.0.0.1./", "127.0.0.1 is loopback"),
    ("http://127.255.255.254/", "is loopback"),
    ("http://[::1]/", "::1 is loopback"),
    ("http://[::ffff:127.0.0.1]/", "IPv4-mapped of 127.0.0.1) is loopback"),
    ("http://[::ffff:7f00:1]/", "IPv4-mapped of 127.0.0.1) is loopback"),
    ("http://[::127.0.0.1]/", "IPv4-compatible of 127.0.0.1) is loopback"),
    ("http://[64:ff9b::7f00:1]/", "NAT64 of 127.0.0.1) is loopback"),
    ("http://[2002:7f00:1::]/", "6to4 of 127.0.0.1) is loopback"),
    ("http://[2001:0:4136:e378:8000:63bf:80ff:fffe]/", "Teredo of 127.0.0.1) is loopback"),
    ("http://0.0.0.0/", "0.0.0.0 is unspecified"),
    ("http://0/", "0.0.0.0 is unspecified"),
    ("http://[::]/", ":: is unspecified"),
    ("http://[::ffff:0.0.0.0]/", "is unspecified"),
    ("http://0.1.2.3/", "'this network'"),
    ("http://169.254.169.254/", "169.254.169.254 is a cloud metadata address"),
    ("http://2852039166/", "169.254.169.254 is a cloud metadata address"),
    ("http://0xa9fea9fe/", "169.254.169.254 is a cloud metadata address"),
    ("http://0251.0376.0251.0376/", "169.254.169.254 is a cloud metadata address"),
    ("http://169.254.169.254.:80/latest/meta-data/", "cloud metadata"),
    ("http://[::ffff:169.254.169.254]/", "IPv4-mapped of 169.254.169.254"),
    ("http://[64:ff9b::a9fe:a9fe]/", "NAT64 of 169.254.169.254"),
    ("http://[64:ff9b::169.254.169.254]/", "NAT64 of 169.254.169.254"),
    ("http://[2002:a9fe:a9fe::]/", "6to4 of 169.254.169.254"),
    ("http://[fd00:ec2::254]/", "fd00:ec2::254 is a cloud metadata address"),
    ("http://169.254.1.1/", "169.254.1.1 is link-local"),
    ("http://[fe80::1]/", "fe80::1 is link-local"),
    ("http://[febf::1]/", "is link-local"),
    ("http://100.64.0.1/", "CGNAT"),
    ("http://100.127.255.254/", "CGNAT"),
    ("http://224.0.0.1/", "224.0.0.1 is multicast"),
    ("http://239.255.255.250/", "is multicast"),
    ("http://[ff02::1]/", "ff02::1 is multicast"),
    ("http://255.255.255.255/", "is broadcast"),
    ("http://10.0.0.1/", "10.0.0.1 is private (RFC 1918)"),
    ("http://012.0.0.1/", "10.0.0.1 is private (RFC 1918)"),
    ("http://167772161/", "10.0.0.1 is private (RFC 1918)"),
    ("http://172.16.0.1/", "172.16.0.1 is private (RFC 1918)"),
    ("http://172.31.255.255/", "is private (RFC 1918)"),
    ("http://192.168.1.1/", "192.168.1.1 is private (RFC 1918)"),
    ("http://0xc0.0xa8.1.1/", "192.168.1.1 is private (RFC 1918)"),
    ("http://[::ffff:10.0.0.1]/", "IPv4-mapped of 10.0.0.1) is private"),
    ("http://[2002:c0a8:101::1]/", "6to4 of 192.168.1.1) is private"),
    ("http://[fc00::1]/", "fc00::1 is unique-local"),
    ("http://[fd12:3456:789a::1]/", "is unique-local"),
    ("http://[64:ff9b:1::a00:1]/", "local-use NAT64"),
    ("http://[fec0::1]/", "fec0::1 is site-local"),
    ("http://192.0.2.1/", "documentation"),
    ("http://198.51.100.7/", "documentation"),
    ("http://203.0.113.9/", "documentation"),
    ("http://[2001:db8::1]/", "documentation"),
    ("http://198.18.0.1/", "benchmarking"),
    ("http://240.0.0.1/", "reserved"),
    ("http://192.0.0.8/", "IETF protocol assignment"),
    ("http://[100::1]/", "discard-only"),
]


@pytest.mark.parametrize(("url", "words"), REFUSED_FORMS, ids=[u for u, _ in REFUSED_FORMS])
def test_e1_e2_refused_address_forms(url: str, words: str) -> None:
    reason = check_url_literal(url, AddressPolicy())
    assert reason is not None
    assert words in reason


def test_e1_table_is_big_enough() -> None:
    assert len(REFUSED_FORMS) >= 30


@pytest.mark.parametrize(
    "url",
    [
        "http://8.8.8.8/",
        "https://134744072/",
        "http://[2606:4700:4700::1111]/",
        "http://[64:ff9b::808:808]/",
        "http://[::ffff:8.8.8.8]/",
    ],
)
def test_e1_global_addresses_pass(url: str) -> None:
    assert check_url_literal(url, AddressPolicy()) is None


@pytest.mark.parametrize(
    "text",
    ["2130706433", "0x7f000001", "0177.0.0.1", "127.1", "0x7f.1", "127.0.1", "0", "1.2.3.4",
     "0xc0.0xa8.1.1", "012.0.0.1", "0x", "08.1", "256.1", "1.16777216", "4294967296",
     "0x100000000", "1.2.3.4.5", "1..2", "a.1"],
)  # fmt: skip
def test_e2_literal_parsing_agrees_with_inet_aton(text: str) -> None:
    try:
        expected: str | None = socket.inet_ntoa(socket.inet_aton(text))
    except OSError:
        expected = None
    parsed = parse_ipv4_literal(text)
    assert (None if parsed is None else str(parsed)) == expected


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1/", "http://[::1]/", "http://10.0.0.1/", "http://172.16.0.1/",
     "http://192.168.1.1/", "http://[fd12::1]/", "http://[::ffff:10.0.0.1]/"],
)  # fmt: skip
def test_e1_allow_private_admits_loopback_rfc1918_unique_local(url: str) -> None:
    assert check_url_literal(url, AddressPolicy()) is not None
    assert check_url_literal(url, AddressPolicy(allow_private=True)) is None


@pytest.mark.parametrize(
    "url",
    ["http://169.254.169.254/", "http://[fd00:ec2::254]/", "http://[fe80::1]/",
     "http://169.254.1.1/", "http://224.0.0.1/", "http://[ff02::1]/", "http://0.0.0.0/",
     "http://[::]/", "http://100.64.0.1/", "http://[64:ff9b::a9fe:a9fe]/", "http://240.0.0.1/"],
)  # fmt: skip
def test_e1_allow_private_never_admits_link_local_metadata_multicast(url: str) -> None:
    assert check_url_literal(url, AddressPolicy(allow_private=True)) is not None


def test_e1_allowed_networks_admit_exactly_what_they_list() -> None:
    policy = AddressPolicy(allowed_networks=("10.1.0.0/16", "127.0.0.1:8081", "[::1]:8082"))
    assert check_address("10.1.2.3", 80, policy) is None
    assert check_address("::ffff:10.1.2.3", 80, policy) is None
    assert check_address("10.2.0.1", 80, policy) is not None
    assert check_address("127.0.0.1", 8081, policy) is None
    assert check_address("127.0.0.1", 8080, policy) is not None
    assert check_address("::1", 8082, policy) is None
    assert check_address("::1", 8081, policy) is not None


def test_e1_allowed_networks_never_admit_metadata_or_unspecified() -> None:
    policy = AddressPolicy(allowed_networks=("169.254.0.0/16", "0.0.0.0/8", "0.0.0.0:80"))
    assert check_address("169.254.1.1", 80, policy) is None
    assert check_address("169.254.169.254", 80, policy) is not None
    assert check_address("0.0.0.0", 80, policy) is not None  # noqa: S104 (a string, not a bind)


def test_e1_zone_ids_and_garbage_are_refused() -> None:
    assert check_address("fe80::1%lo", 80, AddressPolicy(allow_private=True)) is not None
    assert check_address("not-an-ip", 80, AddressPolicy(allow_private=True)) is not None
    with pytest.raises(ValueError, match="zone"):
        literal_address("[fe80::1%25lo]")


def test_e1_socket_factory_refuses_before_any_socket_exists() -> None:
    factory = make_socket_factory(AddressPolicy())
    with pytest.raises(EgressRefusedError, match=r"127\.0\.0\.1 is loopback"):
        factory((socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", ("127.0.0.1", 80)))
    with pytest.raises(EgressRefusedError, match="link-local"):
        factory(
            (socket.AF_INET6, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", ("fe80::1", 80, 0, 2))
        )
    allowed = make_socket_factory(AddressPolicy(allowed_networks=("127.0.0.1:80",)))
    addr_info = (socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", ("127.0.0.1", 80))
    allowed(addr_info).close()


async def test_e1_literal_urls_are_refused_at_connect(
    make_client: MakeClient, upstream: Upstream
) -> None:
    client = make_client(AddressPolicy())
    for url in (upstream.origin + "/echo", f"http://2130706433:{upstream.port}/echo"):
        error = await refused(get(client, url))
        assert error.code == "egress_refused"
        assert "127.0.0.1 is loopback" in error.message
    assert upstream.seen == []


async def test_e3_name_resolving_to_loopback_is_refused(
    make_client: MakeClient, start_upstream: StartUpstream
) -> None:
    # A server really listens on 127.0.0.2: if the guard broke, the request would land.
    target = await start_upstream("127.0.0.2")
    client = make_client(AddressPolicy(), names={"rebind.test": "127.0.0.2"})
    error = await refused(get(client, f"http://rebind.test:{target.port}/echo"))
    assert error.code == "egress_refused"
    assert "address 127.0.0.2 is loopback" in error.message
    assert target.seen == []
    assert error.trace[-1].status is None
    assert error.trace[-1].error == "egress_refused"


async def test_e3_same_name_admitted_when_the_address_is(
    make_client: MakeClient, start_upstream: StartUpstream
) -> None:
    target = await start_upstream("127.0.0.2")
    client = make_client(admitting(target), names={"rebind.test": "127.0.0.2"})
    response = await get(client, f"http://rebind.test:{target.port}/echo")
    assert response.status == 200
    assert len(target.seen) == 1


async def test_e3_rebinding_is_checked_on_every_dial(
    make_client: MakeClient, upstream: Upstream, start_upstream: StartUpstream
) -> None:
    other = await start_upstream("127.0.0.2")
    resolver = FakeResolver({"rebind.test": "127.0.0.1"})
    client = make_client(admitting(upstream), resolver=resolver)
    assert (await get(client, f"http://rebind.test:{upstream.port}/echo")).status == 200
    resolver.names["rebind.test"] = "127.0.0.2"  # the name now points elsewhere
    error = await refused(get(client, f"http://rebind.test:{other.port}/echo"))
    assert error.code == "egress_refused"
    assert [host for host, _ in resolver.calls] == ["rebind.test", "rebind.test"]
    assert other.seen == []


async def test_e3_localhost_is_refused_at_connect(
    make_client: MakeClient, upstream: Upstream
) -> None:
    client = make_client(AddressPolicy(), names={"localhost": "127.0.0.1"})
    error = await refused(get(client, f"http://localhost:{upstream.port}/echo"))
    assert "refused by the egress policy: address 127.0.0.1 is loopback" in error.message
    assert upstream.seen == []


@pytest.mark.netns
def test_e1_refused_forms_through_the_client_in_a_namespace() -> None:
    if (reason := unavailable_reason()) is not None:
        pytest.skip(reason)
    stdin = json.dumps({"urls": [u for u, _ in REFUSED_FORMS]})
    done = run_python_module_in_netns("tests.gateway.egress.netns_probe", stdin=stdin)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    for (url, words), result in zip(REFUSED_FORMS, report["results"], strict=True):
        assert result["url"] == url
        assert result["code"] == "egress_refused", result
        assert words in result["message"]
