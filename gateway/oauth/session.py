"""What a run with an OAuth 2.0 account needs: a fresh token, and one replay after a 401.

SPEC 6: tokens are refreshed before a run when they expire within the margin (the
coordinator's `access_token`), and once on a 401 from the upstream, after which the request
that got it is replayed once with the old access token replaced by the new one wherever it
appeared (header values and the query string).

`OAuthHttpService` wraps the run's egress session. The run's redactor (`runtime.redact`) is
built from the secrets known when the run starts, so a token obtained during the run is kept
from the run itself: requests go out with it, but it is replaced by `[redacted]` in every
answer the script gets (body and headers), and the egress session that sends with it has it
among its secrets (traces and error messages). The script never holds it, so it cannot log
it, put it in a row or throw it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from urllib.parse import quote, quote_plus

import structlog

from gateway.connectors.records import Connector
from gateway.egress import EgressClient
from gateway.errors import AccountNeedsReauth
from gateway.oauth.clients import ClientConfigs
from gateway.oauth.refresh import RefreshCoordinator
from gateway.oauth.tokens import OAuthClientConfig
from runtime.host import HostCallError, HttpRequest, HttpResponse, HttpService
from runtime.model import HttpTraceEntry
from runtime.redact import Redactor

log = structlog.get_logger(__name__)

Renew = Callable[[str], Awaitable[str | None]]
"""Given the token an upstream refused, a better one, or None (`after_unauthorized`)."""


def _forms(old: str, new: str) -> list[tuple[str, str]]:
    """The ways a token appears in a URL, and the same encoding of its replacement."""
    pairs: dict[str, str] = {}
    for old_form, new_form in (
        (old, new),
        (quote(old, safe=""), quote(new, safe="")),
        (quote_plus(old), quote_plus(new)),
    ):
        pairs.setdefault(old_form, new_form)
    return list(pairs.items())


def _split_query(url: str) -> tuple[str, str, str]:
    """(everything before the query, the query, the fragment with its '#')."""
    before, hash_, fragment = url.partition("#")
    base, question, query = before.partition("?")
    return base + question, query, hash_ + fragment


def carries(request: HttpRequest, token: str) -> bool:
    """Whether the request sends `token` in a header value or in its query string."""
    if any(token in value for _, value in request.headers):
        return True
    _, query, _ = _split_query(request.url)
    return any(form in query for form, _ in _forms(token, token))


def with_token(request: HttpRequest, old: str, new: str) -> HttpRequest:
    """`request` with `old` replaced by `new` in its header values and its query string."""
    if old == new:
        return request
    headers = tuple((name, value.replace(old, new)) for name, value in request.headers)
    head, query, tail = _split_query(request.url)
    for old_form, new_form in _forms(old, new):
        query = query.replace(old_form, new_form)
    return HttpRequest(request.method, head + query + tail, headers, request.body)


class OAuthHttpService:
    """One run's `HttpService` for an OAuth 2.0 account.

    The first 401 to a request that carried the account's access token makes it ask for a
    better token once (`renew`); with one, that request is sent again with the token
    replaced, and every later request of the run carries the new token instead of the one
    the script holds. At most one refresh per run: a token that is refused again is the
    upstream's verdict, not a reason for a refresh loop.

    Args:
        egress: the gateway's egress client.
        allowed_hosts: the connector's host patterns.
        secrets: the run's secret values (scrubbed from traces and messages).
        token: the access token the script was given.
        renew: `RefreshCoordinator.after_unauthorized` for this account.
    """

    def __init__(
        self,
        egress: EgressClient,
        allowed_hosts: Sequence[str],
        *,
        secrets: Sequence[str],
        token: str,
        renew: Renew,
    ) -> None:
        self._egress = egress
        self._hosts = tuple(allowed_hosts)
        self._secrets = tuple(secrets)
        self._session: HttpService = egress.session(self._hosts, secrets=self._secrets)
        self._given = token
        self._current = token
        self._renew = renew
        self._renewed = False
        self._hidden = Redactor(())

    @property
    def renewed(self) -> bool:
        """Whether this run asked for a new token after a 401."""
        return self._renewed

    async def send(self, request: HttpRequest, *, max_body_bytes: int) -> HttpResponse:
        """Send the request (with the current token); after a first 401, refresh and replay.

        Raises:
            HostCallError: as the egress session raises it, with new tokens scrubbed.
        """
        outgoing = with_token(request, self._given, self._current)
        response = await self._send(outgoing, max_body_bytes, ())
        if response.status != 401 or self._renewed or not carries(outgoing, self._current):
            return self._hide(response)
        self._renewed = True
        rejected = self._current
        fresh = await self._ask(rejected)
        if fresh is None or fresh == rejected:
            return self._hide(response)
        self._current = fresh
        self._secrets = (*self._secrets, fresh)
        self._hidden = Redactor(tuple(s for s in (fresh,) if s != self._given))
        self._session = self._egress.session(self._hosts, secrets=self._secrets)
        log.info("oauth_request_replayed", status=response.status)
        replay = with_token(outgoing, rejected, fresh)
        second = await self._send(replay, max_body_bytes, response.trace)
        return self._hide(second)

    async def _send(
        self, request: HttpRequest, max_body_bytes: int, before: Sequence[HttpTraceEntry]
    ) -> HttpResponse:
        earlier = list(before)
        try:
            response = await self._session.send(request, max_body_bytes=max_body_bytes)
        except HostCallError as exc:
            hide = self._hidden.text
            raise HostCallError(exc.code, hide(exc.message), trace=[*earlier, *exc.trace]) from None
        if earlier:
            response = HttpResponse(
                response.status, response.headers, response.body, [*earlier, *response.trace]
            )
        return response

    async def _ask(self, rejected: str) -> str | None:
        try:
            return await self._renew(rejected)
        except AccountNeedsReauth:
            # The coordinator marked the account; the 401 stands and the next run gets 409.
            log.info("oauth_replay_skipped", reason="account_needs_reauth")
        except Exception as exc:  # the 401 stands; the run goes on as the script decides
            log.warning("oauth_replay_skipped", reason=type(exc).__name__)
        return None

    def _hide(self, response: HttpResponse) -> HttpResponse:
        hidden = self._hidden
        if not hidden:
            return response
        return HttpResponse(
            response.status,
            tuple((name, hidden.text(value)) for name, value in response.headers),
            hidden.text(response.body),
            response.trace,
        )


@dataclass(frozen=True, slots=True)
class OAuthGrant:
    """The OAuth 2.0 side of one run: whose token, from which client, and the token itself."""

    customer_id: str
    account_id: str
    config: OAuthClientConfig = field(repr=False)
    access_token: str = field(repr=False)


class OAuthForRuns:
    """Fresh tokens and 401 replays for the runs of OAuth 2.0 accounts.

    Args:
        clients: the connectors' client configurations (with their secrets).
        coordinator: the refresh coordinator.
        egress: the egress client the runs' requests go through.
    """

    def __init__(
        self, clients: ClientConfigs, coordinator: RefreshCoordinator, egress: EgressClient
    ) -> None:
        self._clients = clients
        self._coordinator = coordinator
        self._egress = egress

    async def client_secret(self, connector: Connector) -> str | None:
        """The connector's client secret (`metadata.account.clientSecret`), if it has one."""
        return await self._clients.client_secret(connector)

    async def grant(self, customer_id: str, account_id: str, connector: Connector) -> OAuthGrant:
        """A token valid for at least the coordinator's margin (refreshed first if needed).

        Raises:
            AccountNeedsReauth: the grant is gone (409 `account_needs_reauth`).
            RefreshUnavailable: the token expired and cannot be refreshed now (502).
            ProviderMismatch: the connector or the account does not use OAuth 2.0.
        """
        config = await self._clients.config(connector)
        token = await self._coordinator.access_token(customer_id, account_id, config)
        return OAuthGrant(customer_id, account_id, config, token)

    def http(
        self, grant: OAuthGrant, allowed_hosts: Sequence[str], secrets: Sequence[str]
    ) -> OAuthHttpService:
        """The run's `HttpService`: the egress session, refreshing and replaying after a 401."""
        coordinator = self._coordinator

        async def renew(rejected: str) -> str | None:
            return await coordinator.after_unauthorized(
                grant.customer_id, grant.account_id, grant.config, rejected
            )

        return OAuthHttpService(
            self._egress, allowed_hosts, secrets=secrets, token=grant.access_token, renew=renew
        )
