"""A fake OAuth 2.0 authorization server on 127.0.0.1 (real aiohttp), strict like the real ones.

Each grant is a token *family*. A refresh rotates the refresh token; replaying a refresh
token that was already used revokes the whole family (RFC 9700 4.14.2), after which every
refresh of the family is `invalid_grant`. Codes need their PKCE S256 verifier. Knobs: an
artificial `delay` (so concurrent requests overlap), an `outage` (429 with `Retry-After`,
503) and `hang` (never answer, until the server closes).

It is also the user's side of the browser flow and the API the tokens are for: `/authorize`
answers a consenting user at once (302 back to `redirect_uri` with `code` and `state`, or
with `error` when `deny` is set), and `/api/me` answers 200 to the current access token of a
family that is not revoked (in `Authorization: Bearer` or the `access_token` query
parameter), echoing the token back like careless APIs do, and 401 to anything else.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import secrets
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Final

from aiohttp import web
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from yarl import URL

CLIENT_ID: Final = "gateway-client"
CLIENT_SECRET: Final = "client-secret-Vx3mQ9"


@dataclass
class Outage:
    """How the token endpoint fails while set: a status, and `Retry-After` if given."""

    status: int
    retry_after: str | None = None


@dataclass
class Family:
    """One grant: its current tokens, the refresh tokens already used, and whether revoked."""

    refresh_token: str
    access_token: str
    used: set[str] = field(default_factory=set)
    revoked: bool = False


@dataclass
class _Code:
    family: Family
    redirect_uri: str
    challenge: str


class FakeProvider:
    """The fake authorization server; `await start()` then use `token_url`."""

    def __init__(self, *, expires_in: int = 60, delay: float = 0.0, rotate: bool = True) -> None:
        self.expires_in = expires_in
        self.delay = delay
        self.rotate = rotate
        self.outage: Outage | None = None
        self.hang = False
        # `/authorize`: refuse with this error instead of issuing a code.
        self.deny: str | None = None
        # Issue access tokens the API refuses (a provider that revoked them at once).
        self.issue_unusable = False
        # Every `/authorize` query, and every access token `/api/me` saw (accepted or not).
        self.authorizations: list[dict[str, str]] = []
        self.api_tokens: list[str] = []
        # Every token request by grant type, and what the refreshes came to.
        self.requests: Counter[str] = Counter()
        self.outcomes: Counter[str] = Counter()
        self.replays = 0
        self.families: list[Family] = []
        self._by_refresh: dict[str, Family] = {}
        self._codes: dict[str, _Code] = {}
        self._serial = itertools.count(1)
        self._wake = asyncio.Event()
        self._busy = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._runner: web.AppRunner | None = None
        self.url = ""

    @property
    def token_url(self) -> str:
        """The token endpoint."""
        return f"{self.url}/token"

    @property
    def refresh_calls(self) -> int:
        """Refresh requests received, whatever their answer."""
        return self.requests["refresh_token"]

    async def start(self) -> str:
        """Serve on a free loopback port; returns the base URL."""
        app = web.Application()
        app.router.add_post("/token", self._token)
        app.router.add_get("/authorize", self._authorize)
        app.router.add_get("/api/me", self._me)
        app.on_shutdown.append(self._on_shutdown)
        # No access log: `/api/me?access_token=...` lines would pollute the S1 log scans.
        self._runner = web.AppRunner(app, shutdown_timeout=1.0, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"
        return self.url

    async def close(self) -> None:
        """Stop serving (hanging requests are released first)."""
        self._wake.set()
        if self._runner is not None:
            await self._runner.cleanup()

    async def _on_shutdown(self, app: web.Application) -> None:
        self._wake.set()

    # --- grants -----------------------------------------------------------------------

    def grant(self) -> Family:
        """A new token family, as if the user had just authorised."""
        family = Family(self._new("rt"), self._new("at"))
        self.families.append(family)
        self._by_refresh[family.refresh_token] = family
        return family

    def issue_code(self, redirect_uri: str, code_verifier: str) -> str:
        """An authorization code for a new family, bound to the redirect URI and PKCE."""
        return self._issue(redirect_uri, create_s256_code_challenge(code_verifier))

    def _issue(self, redirect_uri: str, challenge: str) -> str:
        code = self._new("code")
        self._codes[code] = _Code(self.grant(), redirect_uri, challenge)
        return code

    def invalidate_access(self, family: Family) -> None:
        """Make the API refuse the family's access token (revoked early); refreshing works."""
        family.access_token = self._new("at-unissued")

    def family_of_access(self, access_token: str) -> Family | None:
        """The family whose current access token this is."""
        return next((f for f in self.families if f.access_token == access_token), None)

    def family_of(self, refresh_token: str) -> Family:
        """The family a refresh token was issued to."""
        return self._by_refresh[refresh_token]

    def _new(self, kind: str) -> str:
        return f"{kind}-{next(self._serial)}-{secrets.token_urlsafe(12)}"

    # --- the user's consent and the API -----------------------------------------------

    async def _authorize(self, request: web.Request) -> web.Response:
        query = dict(request.query)
        self.authorizations.append(query)
        redirect_uri = query.get("redirect_uri", "")
        if (
            query.get("client_id") != CLIENT_ID
            or query.get("response_type") != "code"
            or query.get("code_challenge_method") != "S256"
            or not query.get("code_challenge")
            or not redirect_uri
        ):
            return web.Response(status=400, text="bad authorization request")
        answer: dict[str, str] = {}
        if self.deny is not None:
            answer["error"] = self.deny
        else:
            answer["code"] = self._issue(redirect_uri, query["code_challenge"])
        if "state" in query:
            answer["state"] = query["state"]
        location = URL(redirect_uri).update_query(answer)
        return web.Response(status=302, headers={"Location": str(location)})

    async def _me(self, request: web.Request) -> web.Response:
        header = request.headers.get("Authorization", "")
        token = (
            header[7:] if header.startswith("Bearer ") else request.query.get("access_token", "")
        )
        self.api_tokens.append(token)
        family = self.family_of_access(token) if token else None
        if family is None or family.revoked:
            return web.json_response({"error": "invalid_token"}, status=401)
        return web.json_response(
            {"family": self.families.index(family), "echo": f"you sent {token}"}
        )

    # --- the token endpoint -----------------------------------------------------------

    async def idle(self) -> None:
        """Wait until every request received has been answered (or abandoned by the server)."""
        await self._idle.wait()

    async def _token(self, request: web.Request) -> web.Response:
        self._busy += 1
        self._idle.clear()
        try:
            return await self._answer(request)
        finally:
            self._busy -= 1
            if not self._busy:
                self._idle.set()

    async def _answer(self, request: web.Request) -> web.Response:
        form = {k: str(v) for k, v in (await request.post()).items()}
        grant_type = form.get("grant_type", "")
        self.requests[grant_type] += 1
        if self.hang:
            await self._wake.wait()
            raise web.HTTPServiceUnavailable
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.outage is not None:
            headers = {"Retry-After": self.outage.retry_after} if self.outage.retry_after else {}
            return web.json_response(
                {"error": "temporarily_unavailable"}, status=self.outage.status, headers=headers
            )
        if not self._client_ok(request, form):
            return _error("invalid_client", 401)
        if grant_type == "refresh_token":
            return self._refresh(form.get("refresh_token", ""))
        if grant_type == "authorization_code":
            return self._exchange(form)
        return _error("unsupported_grant_type", 400)

    @staticmethod
    def _client_ok(request: web.Request, form: dict[str, str]) -> bool:
        header = request.headers.get("Authorization", "")
        if header.startswith("Basic "):
            client_id, _, secret = base64.b64decode(header[6:]).decode().partition(":")
        else:
            client_id, secret = form.get("client_id", ""), form.get("client_secret", "")
        return client_id == CLIENT_ID and secret == CLIENT_SECRET

    def _refresh(self, refresh_token: str) -> web.Response:
        family = self._by_refresh.get(refresh_token)
        if family is None or family.revoked:
            self.outcomes["invalid_grant"] += 1
            return _error("invalid_grant", 400)
        if refresh_token in family.used or refresh_token != family.refresh_token:
            # Replay of a rotated-away refresh token: assume theft, revoke the family.
            self.replays += 1
            family.revoked = True
            self.outcomes["invalid_grant"] += 1
            return _error("invalid_grant", 400)
        if self.rotate:
            family.used.add(refresh_token)
            family.refresh_token = self._new("rt")
            self._by_refresh[family.refresh_token] = family
        family.access_token = self._new("at")
        self.outcomes["granted"] += 1
        return self._grant_response(family, rotated=self.rotate)

    def _exchange(self, form: dict[str, str]) -> web.Response:
        code = self._codes.pop(form.get("code", ""), None)
        verifier = form.get("code_verifier", "")
        if (
            code is None
            or code.redirect_uri != form.get("redirect_uri")
            or create_s256_code_challenge(verifier) != code.challenge
        ):
            return _error("invalid_grant", 400)
        return self._grant_response(code.family, rotated=True)

    def _grant_response(self, family: Family, *, rotated: bool) -> web.Response:
        body: dict[str, object] = {
            "access_token": family.access_token,
            "token_type": "Bearer",
            "expires_in": self.expires_in,
            "issued": int(time.time()),
        }
        if rotated:
            body["refresh_token"] = family.refresh_token
        if self.issue_unusable:
            self.invalidate_access(family)  # the token just issued is refused by the API
        return web.json_response(body, headers={"Cache-Control": "no-store"})


def _error(code: str, status: int) -> web.Response:
    return web.json_response({"error": code}, status=status)
