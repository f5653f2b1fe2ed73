"""THREATS E9: CR/LF/NUL and other malformed input never reach the wire."""

from __future__ import annotations

import pytest

from gateway.egress import InvalidRequestError, validate_headers, validate_url
from tests.gateway.egress.fakes import MakeClient, Upstream, admitting, get, refused

BAD_HEADERS = [
    ("X-Ok\r\nX-Injected", "1"),
    ("X-Ok\n", "1"),
    ("X-Ok\x00", "1"),
    ("X Space", "1"),
    ("", "1"),
    ("X-Value", "a\r\nX-Injected: 1"),
    ("X-Value", "a\nb"),
    ("X-Value", "a\rb"),
    ("X-Value", "a\x00b"),
    ("X-Value", "a\x7fb"),
    ("X-Value", "a\x1bb"),
]


@pytest.mark.parametrize(("name", "value"), BAD_HEADERS)
async def test_e9_bad_headers_are_refused_before_sending(
    make_client: MakeClient, upstream: Upstream, name: str, value: str
) -> None:
    client = make_client(admitting(upstream))
    error = await refused(get(client, f"{upstream.origin}/echo", headers=((name, value),)))
    assert error.code == "invalid_request"
    assert "header" in error.message
    assert "X-Injected: 1" not in error.message
    assert upstream.seen == []
    assert error.trace[0].error == "invalid_request"


@pytest.mark.parametrize("suffix", ["/echo\r\nX-Injected: 1", "/echo\n", "/echo\x00", "/e\tcho"])
async def test_e9_control_characters_in_url_are_refused(
    make_client: MakeClient, upstream: Upstream, suffix: str
) -> None:
    client = make_client(admitting(upstream))
    error = await refused(get(client, upstream.origin + suffix))
    assert error.code == "invalid_request"
    assert error.message == "URL contains a control character (CR, LF, NUL, ...)"
    assert upstream.seen == []
    assert error.trace[0].url == "[invalid url]"


@pytest.mark.parametrize("method", ["GET\r\nX: 1", "CONNECT", "TRACE", "FOO", ""])
async def test_e9_bad_methods_are_refused(
    make_client: MakeClient, upstream: Upstream, method: str
) -> None:
    client = make_client(admitting(upstream))
    error = await refused(get(client, f"{upstream.origin}/echo", method=method))
    assert error.code == "invalid_request"
    assert "method" in error.message
    assert upstream.seen == []


def test_e9_tab_is_allowed_inside_a_header_value() -> None:
    assert validate_headers([("X-Value", "a\tb")]) == (("X-Value", "a\tb"),)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://example.com/", "only http and https"),
        ("file:///etc/passwd", "only http and https"),
        ("javascript:alert(1)", "only http and https"),
        ("/relative/path", "only http and https"),
        ("http:///nohost", "no host"),
        ("http://user:hunter2@example.com/", "credentials"),
        ("http://user@example.com/", "credentials"),
        ("http://exa mple.com/", "host is not valid"),
        ("http://%65xample.com/", "host is not valid"),
        ("http://1.2.3.4.5/", "not a valid IPv4"),
        ("http://[fe80::1%25eth0]/", "zone"),
        ("http://example.com:0/", "port 0"),
        ("http://example.com:99999/", "not valid"),
        ("http://example.com/" + "a" * 20000, "longer than"),
    ],
)
def test_e9_url_validation(url: str, message: str) -> None:
    with pytest.raises(InvalidRequestError, match=message) as caught:
        validate_url(url)
    assert "hunter2" not in str(caught.value)


def test_urls_are_canonicalised() -> None:
    assert str(validate_url("HTTP://2130706433:8080/a b?q=1#frag")) == (
        "http://127.0.0.1:8080/a%20b?q=1"
    )
    assert str(validate_url("https://BÜCHER.example./")) == "https://xn--bcher-kva.example/"
    assert str(validate_url("http://[::FFFF:127.0.0.1]/")) == "http://[::ffff:7f00:1]/"


async def test_e9_framing_headers_are_the_gateways(
    make_client: MakeClient, upstream: Upstream
) -> None:
    client = make_client(admitting(upstream))
    headers = (
        ("Content-Length", "1"),
        ("Transfer-Encoding", "chunked"),
        ("Host", "other.test"),
        ("Connection", "close"),
    )
    await get(client, f"{upstream.origin}/echo", method="POST", body="four", headers=headers)
    seen = upstream.seen[0]
    assert seen.body == b"four"
    assert seen.headers["Content-Length"] == "4"
    assert "Transfer-Encoding" not in seen.headers
    assert seen.headers["Host"] == upstream.endpoint
