"""The OAuth 2.0 token endpoint client: Authlib builds and parses, the egress client sends.

Authlib's own HTTP clients (requests, httpx) would bypass the egress policy and honour proxy
variables (SPEC 3.3, 6), so only its message functions are used here: `prepare_token_request`
and `ClientAuth` build the request, `OAuth2Token` reads the answer, `prepare_grant_uri` and
`create_s256_code_challenge` build the authorization URL. The request goes out through an
`EgressSession` allowed to reach the token endpoint's host and port alone, so a redirect to
another host cannot carry the client secret or a refresh token away (THREATS E5).
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Final, Literal
from urllib.parse import parse_qsl

from authlib.oauth2.auth import ClientAuth
from authlib.oauth2.rfc6749 import OAuth2Token
from authlib.oauth2.rfc6749.parameters import prepare_grant_uri, prepare_token_request
from authlib.oauth2.rfc6749.util import scope_to_list
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from yarl import URL

from gateway.egress.client import EgressClient
from gateway.egress.session import UPSTREAM_FAILURES, scrub
from runtime.host import HostCallError, HttpRequest, HttpResponse

ClientAuthMethod = Literal["client_secret_post", "client_secret_basic"]

MAX_TOKEN_RESPONSE_BYTES: Final = 256 * 1024
DEFAULT_TIMEOUT_S: Final = 20.0
_MAX_DESCRIPTION: Final = 200
# Parameters the client sets itself: a connector's extra parameters never override them.
_RESERVED: Final = frozenset(
    {
        "grant_type", "code", "redirect_uri", "code_verifier", "refresh_token", "client_id",
        "client_secret", "scope", "response_type", "state", "code_challenge",
        "code_challenge_method",
    }
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class OAuthClientConfig:
    """A connector's OAuth 2.0 client: where its provider's endpoints are and who it is.

    `extra_params` go on the authorization URL and on token requests (RFC 6749 3.1 and 3.2
    tell servers to ignore parameters they do not know); they never replace a standard one.
    """

    token_url: str
    client_id: str
    client_secret: str | None = field(default=None, repr=False)
    scopes: tuple[str, ...] = ()
    extra_params: Mapping[str, str] = field(default_factory=dict)
    auth_method: ClientAuthMethod = "client_secret_post"
    authorization_url: str | None = None

    def extra(self) -> dict[str, str]:
        """The extra parameters that do not collide with a standard one."""
        return {k: v for k, v in self.extra_params.items() if k not in _RESERVED}


@dataclass(frozen=True, slots=True)
class TokenSet:
    """What a token endpoint granted; the tokens stay out of `repr`."""

    access_token: str = field(repr=False)
    refresh_token: str | None = field(repr=False)
    expires_at: datetime | None
    scope: tuple[str, ...] = ()


class TokenEndpointError(Exception):
    """The token endpoint did not grant a token; the message never holds a secret."""


class InvalidGrant(TokenEndpointError):
    """`invalid_grant`: the refresh token or code is expired, revoked or already used."""


class ProviderUnavailable(TokenEndpointError):
    """429, 5xx, a timeout or an unreachable endpoint: try later, keep the tokens.

    Attributes:
        retry_after: seconds the provider asked to wait (`Retry-After`), if it said.
    """

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ProviderError(TokenEndpointError):
    """Any other refusal (`invalid_client`, a malformed answer, an egress refusal).

    Attributes:
        status: the HTTP status, if an answer came.
        error: the OAuth `error` code, if the answer had one.
    """

    def __init__(self, message: str, status: int | None = None, error: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.error = error


def new_code_verifier() -> str:
    """A PKCE code verifier: 64 URL-safe characters (RFC 7636 4.1 allows 43 to 128)."""
    return secrets.token_urlsafe(48)


def new_state() -> str:
    """An unguessable `state` value for one authorization request."""
    return secrets.token_urlsafe(32)


def authorization_request_url(
    config: OAuthClientConfig, *, redirect_uri: str, state: str, code_verifier: str
) -> str:
    """The provider's authorization URL with `state` and a PKCE S256 challenge.

    Raises:
        ValueError: the config has no `authorization_url`.
    """
    if config.authorization_url is None:
        raise ValueError("the OAuth client has no authorization URL")
    challenge: str = create_s256_code_challenge(code_verifier)
    url: str = prepare_grant_uri(
        config.authorization_url,
        config.client_id,
        "code",
        redirect_uri=redirect_uri,
        scope=list(config.scopes) or None,
        state=state,
        code_challenge=challenge,
        code_challenge_method="S256",
        **config.extra(),
    )
    return url


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a `Retry-After` header: delay-seconds or an HTTP date."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def _endpoint_host(token_url: str) -> str:
    """The one `allowed_hosts` pattern a token request may reach: its own host and port."""
    url = URL(token_url)
    host = url.raw_host or ""
    shown = f"[{host}]" if ":" in host else host
    return f"{shown}:{url.port}"


class TokenEndpoint:
    """Sends token requests (refresh, code exchange) through the egress client.

    Args:
        egress: the gateway's egress client (its address policy applies).
        timeout: seconds for a whole token request; past it, `ProviderUnavailable`.
        max_body_bytes: the largest token response read.
    """

    def __init__(
        self,
        egress: EgressClient,
        *,
        timeout: float = DEFAULT_TIMEOUT_S,
        max_body_bytes: int = MAX_TOKEN_RESPONSE_BYTES,
    ) -> None:
        self._egress = egress
        self._timeout = timeout
        self._max_body_bytes = max_body_bytes

    async def refresh(self, config: OAuthClientConfig, refresh_token: str) -> TokenSet:
        """Trade a refresh token for a new token set (RFC 6749 6).

        A rotated refresh token is in the result; when the provider sends none, the old one
        is kept.

        Raises:
            InvalidGrant: the refresh token is no longer good.
            ProviderUnavailable: 429, 5xx, timeout or unreachable.
            ProviderError: any other refusal.
        """
        body: str = prepare_token_request(
            "refresh_token",
            refresh_token=refresh_token,
            scope=list(config.scopes) or None,
            **config.extra(),
        )
        payload = await self._post(config, body, (refresh_token,))
        return _token_set(payload, config.scopes, fallback_refresh=refresh_token)

    async def exchange_code(
        self, config: OAuthClientConfig, code: str, redirect_uri: str, code_verifier: str
    ) -> TokenSet:
        """Trade an authorization code (with its PKCE verifier) for a token set (RFC 6749 4.1.3).

        Raises:
            InvalidGrant: the code is expired, used, or the verifier does not match.
            ProviderUnavailable: 429, 5xx, timeout or unreachable.
            ProviderError: any other refusal.
        """
        body: str = prepare_token_request(
            "authorization_code",
            redirect_uri=redirect_uri,
            code=code,
            code_verifier=code_verifier,
            **config.extra(),
        )
        payload = await self._post(config, body, (code, code_verifier))
        return _token_set(payload, config.scopes, fallback_refresh=None)

    async def _post(
        self, config: OAuthClientConfig, body: str, request_secrets: Sequence[str]
    ) -> dict[str, object]:
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "Accept": "application/json",
        }
        # A client without a secret (a public client using PKCE) sends its id alone.
        method = config.auth_method if config.client_secret else "none"
        auth = ClientAuth(config.client_id, config.client_secret, method)
        url, headers, body = auth.prepare("POST", config.token_url, headers, body)
        hidden = tuple(s for s in (config.client_secret, *request_secrets) if s)
        try:
            session = self._egress.session([_endpoint_host(config.token_url)], secrets=hidden)
        except ValueError:
            raise ProviderError("the token URL is not a valid URL") from None
        request = HttpRequest("POST", str(url), tuple(headers.items()), body)
        try:
            async with asyncio.timeout(self._timeout):
                response = await session.send(request, max_body_bytes=self._max_body_bytes)
        except TimeoutError:
            message = f"the token endpoint did not answer within {self._timeout:g} s"
            raise ProviderUnavailable(message) from None
        except HostCallError as exc:
            # The egress client already scrubbed the session's secrets from its message.
            if exc.code in UPSTREAM_FAILURES:
                raise ProviderUnavailable(f"token endpoint: {exc.message}") from None
            raise ProviderError(f"token endpoint: {exc.message}") from None
        return _payload_or_raise(response, hidden)


def _payload(response: HttpResponse) -> dict[str, object] | None:
    """The answer's JSON object (or form-encoded fields, as older providers send)."""
    try:
        decoded = json.loads(response.body)
    except ValueError:
        content_type = next(
            (v for k, v in response.headers if k.lower() == "content-type"), ""
        ).lower()
        if content_type.startswith("application/x-www-form-urlencoded") or (
            content_type.startswith("text/plain") and "=" in response.body
        ):
            return dict(parse_qsl(response.body.strip()))
        return None
    return decoded if isinstance(decoded, dict) else None


def _header(response: HttpResponse, name: str) -> str | None:
    return next((v for k, v in response.headers if k.lower() == name), None)


def _payload_or_raise(response: HttpResponse, hidden: Sequence[str]) -> dict[str, object]:
    status = response.status
    if status == 429 or status >= 500:
        retry_after = parse_retry_after(_header(response, "retry-after"))
        raise ProviderUnavailable(f"the token endpoint answered {status}", retry_after)
    payload = _payload(response)
    # Some providers (GitHub) answer errors with 200, hence the check before the status.
    if payload is not None and "error" in payload:
        raise _oauth_error(status, payload, response, hidden)
    if not 200 <= status < 300:
        raise ProviderError(f"the token endpoint answered {status}", status)
    if payload is None:
        raise ProviderError("the token endpoint's answer is not a JSON object", status)
    return payload


def _oauth_error(
    status: int, payload: Mapping[str, object], response: HttpResponse, hidden: Sequence[str]
) -> TokenEndpointError:
    error = scrub(str(payload["error"]), hidden)[:_MAX_DESCRIPTION]
    description = payload.get("error_description")
    detail = f"{error}: {description}" if isinstance(description, str) else error
    message = f"the token endpoint answered {status} ({scrub(detail, hidden)[:_MAX_DESCRIPTION]})"
    if error == "invalid_grant":
        return InvalidGrant(message)
    if error in ("temporarily_unavailable", "slow_down"):
        return ProviderUnavailable(message, parse_retry_after(_header(response, "retry-after")))
    return ProviderError(message, status, error)


def _token_set(
    payload: dict[str, object], requested: tuple[str, ...], *, fallback_refresh: str | None
) -> TokenSet:
    access = payload.get("access_token")
    if not isinstance(access, str) or not access:
        raise ProviderError("the token endpoint's answer has no access_token")
    try:
        token = OAuth2Token.from_dict(dict(payload))
        expires = token.get("expires_at")
        expires_at = None if expires is None else datetime.fromtimestamp(int(expires), UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        raise ProviderError("the token endpoint's answer has an invalid expires_in") from None
    rotated = payload.get("refresh_token")
    granted = payload.get("scope")
    scope: list[str] | None = (
        scope_to_list(granted) if isinstance(granted, str | list | tuple) else None
    )
    return TokenSet(
        access_token=access,
        refresh_token=rotated if isinstance(rotated, str) and rotated else fallback_refresh,
        expires_at=expires_at,
        # RFC 6749 5.1: no `scope` in the answer means the scope asked for.
        scope=tuple(scope) if scope is not None else requested,
    )
