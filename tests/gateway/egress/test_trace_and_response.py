"""Traces (one entry per hop, no secrets; THREATS S1) and how responses come back."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from yarl import URL

from gateway.egress import EgressClient, redact_url, scrub
from tests.gateway.egress.fakes import MakeClient, Upstream, admitting, get, refused

SECRET = "canary-s3cr3t/+x"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://h/p?token=abc&page=2", "http://h/p?token=[redacted]&page=2"),
        (
            "http://h/p?access_token=a&client_secret=b&q=c",
            "http://h/p?access_token=[redacted]&client_secret=[redacted]&q=c",
        ),
        (
            "http://h/p?API_KEY=a&apikey=b&key=c&sig=d",
            "http://h/p?API_KEY=[redacted]&apikey=[redacted]&key=[redacted]&sig=[redacted]",
        ),
        (
            "http://h/p?password=a&passwd=b&code=c&auth=d",
            "http://h/p?password=[redacted]&passwd=[redacted]&code=[redacted]&auth=[redacted]",
        ),
        (
            "http://h/p?refresh_token=a&session=b&signature=c",
            "http://h/p?refresh_token=[redacted]&session=[redacted]&signature=[redacted]",
        ),
        (
            "http://h/p?X-Amz-Signature=a&X-Amz-Credential=b",
            "http://h/p?X-Amz-Signature=[redacted]&X-Amz-Credential=[redacted]",
        ),
        ("http://h/p?flag&q=1", "http://h/p?flag&q=1"),
        ("http://u:pw@h/p#frag", "http://h/p"),
    ],
)
def test_s1_redact_url(url: str, expected: str) -> None:
    assert redact_url(URL(url)) == expected


def test_s1_secrets_are_redacted_anywhere_and_in_any_encoding() -> None:
    url = URL(f"http://h/{quote(SECRET, safe='')}/x?q={quote(SECRET, safe='')}&plain={SECRET}")
    assert SECRET not in redact_url(url, [SECRET])
    assert "s3cr3t" not in redact_url(url, [SECRET])
    assert scrub("a canary-s3cr3t/+x b", [SECRET, ""]) == "a [redacted] b"


async def test_s1_trace_has_one_entry_per_hop_and_no_secrets(
    make_client: MakeClient, upstream: Upstream
) -> None:
    client = make_client(admitting(upstream))
    target = quote(f"/echo?token={SECRET}&n=1", safe="")
    url = f"{upstream.origin}/redirect?status=307&api_key=abc&to={target}"
    headers = (("Authorization", f"Bearer {SECRET}"),)
    response = await get(
        client, url, method="POST", body=SECRET, headers=headers, secrets=(SECRET,)
    )
    first, second = response.trace
    assert (first.method, first.status, second.method, second.status) == ("POST", 307, "POST", 200)
    assert "api_key=[redacted]" in first.url
    assert second.url == f"{upstream.origin}/echo?token=[redacted]&n=1"
    assert all(entry.duration_ms >= 0 and entry.error is None for entry in response.trace)
    assert "s3cr3t" not in repr(response.trace)


async def test_s1_refusal_messages_hold_no_secrets(make_client: MakeClient) -> None:
    client = make_client(admitting())
    error = await refused(
        get(client, f"http://{SECRET[:13]}.evil.test/", allowed_hosts=(), secrets=(SECRET[:13],))
    )
    assert "s3cr3t" not in error.message
    assert "s3cr3t" not in repr(error.trace)


async def test_repeated_headers_and_charsets(make_client: MakeClient, upstream: Upstream) -> None:
    client = make_client(admitting(upstream))
    latin1 = "café".encode("latin-1").hex()
    response = await get(
        client, f"{upstream.origin}/bytes?hex={latin1}&type=text/plain;charset=latin-1"
    )
    assert response.body == "café"
    assert [v for k, v in response.headers if k == "X-Multi"] == ["one", "two"]
    bad_utf8 = (b"ok \xff").hex()
    response = await get(client, f"{upstream.origin}/bytes?hex={bad_utf8}&type=text/plain")
    assert response.body == "ok \ufffd"
    response = await get(
        client, f"{upstream.origin}/bytes?hex={bad_utf8}&type=text/plain;charset=nope"
    )
    assert response.body == "ok \ufffd"


async def test_head_has_no_body_and_body_is_utf8(
    make_client: MakeClient, upstream: Upstream
) -> None:
    client = make_client(admitting(upstream))
    response = await get(client, f"{upstream.origin}/echo", method="head")
    assert (response.status, response.body) == (200, "")
    await get(client, f"{upstream.origin}/echo", method="PUT", body="żółw")
    seen = upstream.seen[-1]
    assert seen.body == "żółw".encode()
    assert seen.headers["Content-Type"] == "text/plain;charset=UTF-8"


async def test_closed_client_refuses_to_send(upstream: Upstream) -> None:
    client = EgressClient(admitting(upstream))
    async with client:
        assert (await get(client, f"{upstream.origin}/echo")).status == 200
    with pytest.raises(RuntimeError, match="closed"):
        await get(client, f"{upstream.origin}/echo")
