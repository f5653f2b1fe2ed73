"""The token endpoint client against the fake authorization server, through the real egress."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from urllib.parse import parse_qs, urlsplit

import pytest
from aiohttp import web
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from pytest_aiohttp import AiohttpServer

from gateway.egress import AddressPolicy, EgressClient
from gateway.oauth import (
    InvalidGrant,
    OAuthClientConfig,
    ProviderError,
    ProviderUnavailable,
    TokenEndpoint,
    TokenEndpointError,
    authorization_request_url,
    new_code_verifier,
    new_state,
    parse_retry_after,
)
from tests.gateway.oauth.conftest import ENDPOINT_TIMEOUT_S
from tests.gateway.oauth.fake_provider import CLIENT_SECRET, FakeProvider, Outage

REDIRECT_URI = "http://127.0.0.1:8080/api/v1/oauth/callback"


async def test_refresh_returns_the_rotated_token_set(
    endpoint: TokenEndpoint, provider: FakeProvider, config: OAuthClientConfig
) -> None:
    family = provider.grant()
    old = family.refresh_token
    tokens = await endpoint.refresh(config, old)
    assert tokens.access_token == family.access_token
    assert tokens.refresh_token == family.refresh_token != old
    assert tokens.expires_at is not None
    remaining = tokens.expires_at - datetime.now(UTC)
    assert timedelta(seconds=55) < remaining <= timedelta(seconds=61)
    assert tokens.scope == ("read", "write")  # none in the answer: the scope asked for
    assert family.access_token not in repr(tokens)
    assert family.refresh_token not in repr(tokens)
    assert CLIENT_SECRET not in repr(config)


async def test_refresh_without_rotation_keeps_the_refresh_token(
    endpoint: TokenEndpoint, provider: FakeProvider, config: OAuthClientConfig
) -> None:
    provider.rotate = False
    family = provider.grant()
    tokens = await endpoint.refresh(config, family.refresh_token)
    assert tokens.refresh_token == family.refresh_token


async def test_client_secret_basic_and_a_wrong_secret(
    endpoint: TokenEndpoint, provider: FakeProvider, config: OAuthClientConfig
) -> None:
    family = provider.grant()
    basic = OAuthClientConfig(
        token_url=config.token_url,
        client_id=config.client_id,
        client_secret=config.client_secret,
        auth_method="client_secret_basic",
    )
    assert (await endpoint.refresh(basic, family.refresh_token)).access_token
    wrong = OAuthClientConfig(
        token_url=config.token_url, client_id=config.client_id, client_secret="wrong-Qp2"
    )
    with pytest.raises(ProviderError) as refused:
        await endpoint.refresh(wrong, family.refresh_token)
    assert (refused.value.status, refused.value.error) == (401, "invalid_client")
    assert "wrong-Qp2" not in str(refused.value)
    assert family.refresh_token not in str(refused.value)


async def test_invalid_grant(
    endpoint: TokenEndpoint, provider: FakeProvider, config: OAuthClientConfig
) -> None:
    with pytest.raises(InvalidGrant) as refused:
        await endpoint.refresh(config, "rt-never-issued-7Yq")
    assert "invalid_grant" in str(refused.value)
    assert "rt-never-issued-7Yq" not in str(refused.value)


@pytest.mark.parametrize(
    ("outage", "retry_after"),
    [
        (Outage(429, "30"), 30.0),
        (Outage(503), None),
        (Outage(502, "7"), 7.0),
    ],
)
async def test_rate_limits_and_server_errors_are_unavailable(
    endpoint: TokenEndpoint,
    provider: FakeProvider,
    config: OAuthClientConfig,
    outage: Outage,
    retry_after: float | None,
) -> None:
    provider.outage = outage
    with pytest.raises(ProviderUnavailable) as unavailable:
        await endpoint.refresh(config, provider.grant().refresh_token)
    assert unavailable.value.retry_after == retry_after


async def test_a_hanging_endpoint_times_out(
    endpoint: TokenEndpoint, provider: FakeProvider, config: OAuthClientConfig
) -> None:
    provider.hang = True
    started = time.monotonic()
    with pytest.raises(ProviderUnavailable, match="did not answer"):
        await endpoint.refresh(config, provider.grant().refresh_token)
    assert time.monotonic() - started < ENDPOINT_TIMEOUT_S + 0.5


async def test_an_unreachable_endpoint_is_unavailable(
    endpoint: TokenEndpoint, provider: FakeProvider, config: OAuthClientConfig
) -> None:
    family = provider.grant()
    await provider.close()
    with pytest.raises(ProviderUnavailable) as unavailable:
        await endpoint.refresh(config, family.refresh_token)
    assert unavailable.value.retry_after is None


async def test_the_egress_policy_applies(provider: FakeProvider, config: OAuthClientConfig) -> None:
    # Private addresses are off by default: the token endpoint on loopback is refused.
    async with EgressClient(AddressPolicy()) as strict:
        with pytest.raises(ProviderError, match="refused"):
            await TokenEndpoint(strict).refresh(config, provider.grant().refresh_token)
    assert provider.refresh_calls == 0


async def test_exchange_code_with_pkce(
    endpoint: TokenEndpoint, provider: FakeProvider, config: OAuthClientConfig
) -> None:
    verifier = new_code_verifier()
    assert 43 <= len(verifier) <= 128
    code = provider.issue_code(REDIRECT_URI, verifier)
    tokens = await endpoint.exchange_code(config, code, REDIRECT_URI, verifier)
    family = provider.families[-1]
    assert (tokens.access_token, tokens.refresh_token) == (
        family.access_token,
        family.refresh_token,
    )
    other = provider.issue_code(REDIRECT_URI, verifier)
    with pytest.raises(InvalidGrant):
        await endpoint.exchange_code(config, other, REDIRECT_URI, new_code_verifier())
    with pytest.raises(InvalidGrant):  # a code is good once
        await endpoint.exchange_code(config, code, REDIRECT_URI, verifier)


def test_authorization_url_has_state_and_an_s256_challenge(config: OAuthClientConfig) -> None:
    verifier, state = new_code_verifier(), new_state()
    extra = OAuthClientConfig(
        token_url=config.token_url,
        client_id=config.client_id,
        scopes=config.scopes,
        authorization_url="https://auth.example.com/authorize?tenant=t1",
        extra_params={"access_type": "offline", "state": "forged", "client_id": "other"},
    )
    url = authorization_request_url(
        extra, redirect_uri=REDIRECT_URI, state=state, code_verifier=verifier
    )
    parts = urlsplit(url)
    assert (parts.scheme, parts.netloc, parts.path) == ("https", "auth.example.com", "/authorize")
    assert parse_qs(parts.query) == {
        "tenant": ["t1"],
        "response_type": ["code"],
        "client_id": [config.client_id],
        "redirect_uri": [REDIRECT_URI],
        "scope": ["read write"],
        "state": [state],
        "code_challenge": [create_s256_code_challenge(verifier)],
        "code_challenge_method": ["S256"],
        "access_type": ["offline"],
    }
    assert verifier not in url
    with pytest.raises(ValueError, match="no authorization URL"):
        authorization_request_url(
            OAuthClientConfig(token_url=config.token_url, client_id="c"),
            redirect_uri=REDIRECT_URI,
            state=state,
            code_verifier=verifier,
        )


def test_parse_retry_after() -> None:
    now = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    assert parse_retry_after("120", now=now) == 120.0
    later = format_datetime(now + timedelta(seconds=90), usegmt=True)
    assert parse_retry_after(later, now=now) == 90.0
    earlier = format_datetime(now - timedelta(seconds=90), usegmt=True)
    assert parse_retry_after(earlier, now=now) == 0.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    assert parse_retry_after("-5") is None


Answer = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _answer(status: int, body: str, content_type: str = "application/json") -> Answer:
    async def handler(request: web.Request) -> web.StreamResponse:
        return web.Response(status=status, text=body, content_type=content_type)

    return handler


async def _redirect(request: web.Request) -> web.StreamResponse:
    raise web.HTTPTemporaryRedirect("http://127.0.0.2:9/token")


@pytest.mark.parametrize(
    ("handler", "error"),
    [
        (_answer(200, "<html>hello</html>", "text/html"), ProviderError),
        (_answer(200, '{"error": "invalid_grant"}'), InvalidGrant),  # GitHub answers 200
        (_answer(400, '{"error": "invalid_scope", "error_description": "no"}'), ProviderError),
        (_answer(200, '{"access_token": "at", "expires_in": "soon"}'), ProviderError),
        (_answer(200, '{"token_type": "Bearer"}'), ProviderError),
        (_answer(404, "not here", "text/plain"), ProviderError),
        (_answer(400, '{"error": "temporarily_unavailable"}'), ProviderUnavailable),
        (_redirect, ProviderError),  # to another host: not followed, the secret stays here
    ],
)
async def test_malformed_and_refused_answers(
    endpoint: TokenEndpoint,
    aiohttp_server: AiohttpServer,
    handler: Answer,
    error: type[TokenEndpointError],
) -> None:
    app = web.Application()
    app.router.add_post("/token", handler)
    server = await aiohttp_server(app)
    config = OAuthClientConfig(
        token_url=str(server.make_url("/token")), client_id="c", client_secret=CLIENT_SECRET
    )
    with pytest.raises(error) as refused:
        await endpoint.refresh(config, "rt-canary-Lm4")
    assert type(refused.value) is error
    assert "rt-canary-Lm4" not in str(refused.value)
    assert CLIENT_SECRET not in str(refused.value)


async def test_form_encoded_answers_are_read(
    endpoint: TokenEndpoint, aiohttp_server: AiohttpServer
) -> None:
    app = web.Application()
    app.router.add_post(
        "/token",
        _answer(
            200,
            "access_token=at-1&refresh_token=rt-2&expires_in=10&scope=a,b",
            "application/x-www-form-urlencoded",
        ),
    )
    server = await aiohttp_server(app)
    config = OAuthClientConfig(token_url=str(server.make_url("/token")), client_id="c")
    tokens = await endpoint.refresh(config, "rt-1")
    assert (tokens.access_token, tokens.refresh_token) == ("at-1", "rt-2")
    assert tokens.scope == ("a,b",)
