"""THREATS E4-E5: redirects are followed by the gateway, re-checked, and lose credentials."""

from __future__ import annotations

import json
from urllib.parse import quote

import pytest

from tests.gateway.egress.fakes import (
    MakeClient,
    StartUpstream,
    Upstream,
    admitting,
    get,
    refused,
)
from tests.netns import run_python_module_in_netns, unavailable_reason

CREDENTIALS = (
    ("Authorization", "Bearer tok-123"),
    ("Cookie", "sid=cookie-456"),
    ("X-Api-Key", "key-789"),
    ("Accept", "application/json"),
    ("User-Agent", "connector/1.0"),
)


def redirect(origin: str, to: str, status: int = 302) -> str:
    """A URL of `origin` answering `status` with `Location: to`."""
    return f"{origin}/redirect?status={status}&to={quote(to, safe='')}"


async def test_e4_redirect_to_another_loopback_port_is_refused(
    make_client: MakeClient, upstream: Upstream, start_upstream: StartUpstream
) -> None:
    other = await start_upstream()
    client = make_client(admitting(upstream))
    for target in (
        f"http://127.0.0.1:{other.port}/echo",
        f"http://0.0.0.0:{other.port}/echo",
        f"http://2130706433:{other.port}/echo",
        f"http://[::ffff:127.0.0.1]:{other.port}/echo",
    ):
        error = await refused(get(client, redirect(upstream.origin, target)))
        assert error.code == "egress_refused", target
        assert [e.status for e in error.trace] == [302, None]
    assert other.seen == []
    assert len(upstream.seen) == 4


async def test_e4_redirect_to_a_name_of_a_private_address_is_refused(
    make_client: MakeClient, upstream: Upstream, start_upstream: StartUpstream
) -> None:
    other = await start_upstream()
    client = make_client(admitting(upstream), names={"internal.test": "127.0.0.1"})
    error = await refused(
        get(client, redirect(upstream.origin, f"http://internal.test:{other.port}/echo"))
    )
    assert error.code == "egress_refused"
    assert "address 127.0.0.1 is loopback" in error.message
    assert other.seen == []


@pytest.mark.netns
def test_e4_redirect_to_private_address_refused_in_a_namespace() -> None:
    if (reason := unavailable_reason()) is not None:
        pytest.skip(reason)
    targets = [
        "http://10.0.0.1/",
        "http://10.0.0.1:{port}/echo",
        "http://192.168.1.1/",
        "http://172.16.0.1/",
        "http://169.254.169.254/latest/meta-data/",
        "http://[fd00::1]/",
        "http://100.64.0.1/",
    ]
    urls = [redirect("{upstream}", t) for t in targets]
    stdin = json.dumps({"urls": urls, "admit_upstream": True})
    done = run_python_module_in_netns("tests.gateway.egress.netns_probe", stdin=stdin)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    for result in report["results"]:
        # One request reached the admitted upstream (the 302); the hop was refused.
        assert result["code"] == "egress_refused", result
        assert result["upstream_requests"] == 1


async def test_e5_cross_origin_redirect_drops_credentials(
    make_client: MakeClient, upstream: Upstream, start_upstream: StartUpstream
) -> None:
    other = await start_upstream()
    client = make_client(admitting(upstream, other))
    url = redirect(upstream.origin, f"{other.origin}/echo")
    response = await get(client, url, headers=CREDENTIALS)
    assert response.status == 200
    assert upstream.seen[0].headers["Authorization"] == "Bearer tok-123"
    seen = other.seen[0].headers
    for name in ("Authorization", "Cookie", "X-Api-Key"):
        assert name not in seen
    assert seen["Accept"] == "application/json"
    assert seen["User-Agent"] == "connector/1.0"


async def test_e5_other_host_same_address_is_another_origin(
    make_client: MakeClient, upstream: Upstream
) -> None:
    client = make_client(admitting(upstream), names={"alias.test": "127.0.0.1"})
    url = redirect(upstream.origin, f"http://alias.test:{upstream.port}/echo")
    await get(client, url, headers=CREDENTIALS)
    assert "Authorization" not in upstream.seen[1].headers


async def test_e5_same_origin_redirect_keeps_headers(
    make_client: MakeClient, upstream: Upstream
) -> None:
    client = make_client(admitting(upstream))
    response = await get(client, redirect(upstream.origin, "/echo"), headers=CREDENTIALS)
    assert response.status == 200
    seen = upstream.seen[1].headers
    assert seen["Authorization"] == "Bearer tok-123"
    assert seen["Cookie"] == "sid=cookie-456"
    assert seen["X-Api-Key"] == "key-789"


async def test_e5_cross_origin_307_keeps_body_and_type_only(
    make_client: MakeClient, upstream: Upstream, start_upstream: StartUpstream
) -> None:
    other = await start_upstream()
    client = make_client(admitting(upstream, other))
    headers = (*CREDENTIALS, ("Content-Type", "application/json"))
    url = redirect(upstream.origin, f"{other.origin}/echo", status=307)
    await get(client, url, method="POST", body='{"a": 1}', headers=headers)
    seen = other.seen[0]
    assert (seen.method, seen.body) == ("POST", b'{"a": 1}')
    assert seen.headers["Content-Type"] == "application/json"
    assert "Authorization" not in seen.headers


@pytest.mark.parametrize(
    ("status", "method", "expected", "body_kept"),
    [
        (301, "POST", "GET", False),
        (302, "POST", "GET", False),
        (303, "POST", "GET", False),
        (303, "PUT", "GET", False),
        (303, "DELETE", "GET", False),
        (303, "HEAD", "HEAD", False),
        (301, "PUT", "PUT", True),
        (302, "PATCH", "PATCH", True),
        (307, "POST", "POST", True),
        (307, "PUT", "PUT", True),
        (308, "POST", "POST", True),
        (308, "DELETE", "DELETE", True),
    ],
)
async def test_redirect_method_rules(
    make_client: MakeClient,
    upstream: Upstream,
    status: int,
    method: str,
    expected: str,
    body_kept: bool,
) -> None:
    client = make_client(admitting(upstream))
    body = None if method == "HEAD" else "payload é"
    headers = (("Content-Type", "text/x-test"),)
    url = redirect(upstream.origin, "/echo", status)
    response = await get(client, url, method=method, body=body, headers=headers)
    assert response.status == 200
    first, second = upstream.seen
    assert first.method == method
    assert second.method == expected
    if body_kept:
        assert second.body == "payload é".encode()
        assert second.headers["Content-Type"] == "text/x-test"
    else:
        assert second.body == b""
        assert "Content-Type" not in second.headers
    assert [e.method for e in response.trace] == [method, expected]


async def test_five_redirects_are_followed(make_client: MakeClient, upstream: Upstream) -> None:
    client = make_client(admitting(upstream))
    response = await get(client, f"{upstream.origin}/chain/5")
    assert response.body == "end of chain"
    assert [e.status for e in response.trace] == [302] * 5 + [200]


async def test_sixth_redirect_is_refused(make_client: MakeClient, upstream: Upstream) -> None:
    client = make_client(admitting(upstream))
    error = await refused(get(client, f"{upstream.origin}/chain/6"))
    assert error.code == "too_many_redirects"
    assert len(upstream.seen) == 6
    assert [e.status for e in error.trace] == [302] * 6
    assert [e.error for e in error.trace] == [None] * 5 + ["too_many_redirects"]


async def test_redirect_to_another_scheme_is_refused(
    make_client: MakeClient, upstream: Upstream
) -> None:
    client = make_client(admitting(upstream))
    for target in ("file:///etc/passwd", "gopher://127.0.0.1:70/", "http://user:pw@x.test/"):
        error = await refused(get(client, redirect(upstream.origin, target)))
        assert error.code == "egress_refused"
        assert "redirect from host 127.0.0.1 refused" in error.message
        assert "pw" not in error.message


async def test_redirect_without_location_is_the_response(
    make_client: MakeClient, upstream: Upstream
) -> None:
    client = make_client(admitting(upstream))
    response = await get(client, f"{upstream.origin}/redirect?status=302")
    assert response.status == 302
    assert len(response.trace) == 1
