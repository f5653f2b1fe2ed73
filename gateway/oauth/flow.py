"""The OAuth 2.0 authorization-code flow with PKCE: `authorize` and `callback` (SPEC 4.2, 6).

`start` stores a pending authorisation and returns the provider's authorization URL: the
`state` (only its SHA-256 is stored), a PKCE S256 challenge whose verifier is sealed by the
key ring bound to the customer and the state, the user, the connector, the account to create
or re-authorise, the `redirect_uri` and an expiry (10 minutes).

`finish` is the callback. It takes the pending row and deletes it in one transaction (a
compare-and-swap: of two callbacks with the same state, one deletes the row and the other
is refused), so a state is used once whatever happens next (THREATS O3). Then it trades the
code for tokens with the stored verifier, runs the connector's auth script with the new
access token, and only if that succeeds stores the account, or re-authorises the named one.

A browser sends no bearer header, so `issue_link` gives a signed-in caller a one-time link
to `authorize` (SPEC 4.3): a random secret of which only the SHA-256 is stored, bound to the
caller and what it authorises, valid 60 s. `start_from_link` takes the row and deletes it in
one transaction, like a state, then starts the authorisation as that user.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Final
from urllib.parse import quote, urlencode

import structlog
from sqlalchemy import Row, delete, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.accounts.service import (
    ACCESS_FIELD,
    Account,
    AccountService,
    CredentialCheck,
    Provider,
)
from gateway.connectors.models import OAuth2Auth
from gateway.connectors.records import Connector
from gateway.connectors.service import ConnectorService
from gateway.connectors.tables import connectors
from gateway.crypto import DecryptionError, KeyRing, Sealed, associated_data
from gateway.errors import (
    CredentialsRejected,
    GatewayError,
    NotFound,
    ProviderMismatch,
    ValidationFailed,
)
from gateway.identity.principal import Principal
from gateway.identity.service import IdentityService
from gateway.oauth.clients import ClientConfigs
from gateway.oauth.tables import oauth_links, oauth_states
from gateway.oauth.tokens import (
    InvalidGrant,
    OAuthClientConfig,
    ProviderError,
    ProviderUnavailable,
    TokenEndpoint,
    TokenSet,
    authorization_request_url,
    new_code_verifier,
    new_state,
)
from gateway.settings import Settings
from gateway.store.ids import new_id
from gateway.store.tables import utcnow

log = structlog.get_logger(__name__)

CALLBACK_PATH: Final = "/api/v1/oauth/callback"
STATE_TTL: Final = timedelta(minutes=10)
LINK_TTL: Final = timedelta(seconds=60)
MAX_STATE_LENGTH: Final = 512
_TABLE: Final = "oauth_states"
_VERIFIER: Final = "code_verifier"
# An OAuth error code as RFC 6749 4.1.2.1 defines them; anything else is not shown.
_ERROR_CODE: Final = re.compile(r"[A-Za-z0-9_.\-]{1,64}")
_UNKNOWN_LINK: Final = (
    "the authorisation link is unknown, expired or used already: ask for a new one"
)

CheckFor = Callable[[Principal, Connector], CredentialCheck]
"""Builds the auth-script check of a connector's credentials for a user."""


class InvalidAuthorisation(GatewayError):
    """The callback cannot be used: bad, expired or used state, no code, a provider error."""

    code = "bad_request"


class InvalidLink(GatewayError):
    """A one-time authorize link that cannot be used: unknown, forged, used or expired.

    A 404: the link names something that does not exist (any more), and the request that
    carries it is well formed.
    """

    code = "not_found"


class TokenExchangeUnavailable(GatewayError):
    """The provider's token endpoint did not trade the code (down, or refused the client).

    Attributes:
        retry_after: seconds the provider asked to wait, if it said.
    """

    code = "upstream_unavailable"

    def __init__(self, detail: str, retry_after: float | None = None) -> None:
        super().__init__(detail, retry_after=retry_after)


@dataclass(frozen=True, slots=True)
class Pending:
    """A pending authorisation, taken from the store by its callback."""

    customer_id: str
    user_id: str
    connector_id: str
    account_name: str | None
    account_id: str | None
    redirect_uri: str
    code_verifier: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class Authorised:
    """What a successful callback did."""

    account: Account
    reauthorised: bool


def callback_url(settings: Settings) -> str:
    """The `redirect_uri`: `GATEWAY_PUBLIC_URL`, else the address `serve` listens on (SPEC 6)."""
    return settings.public_base() + CALLBACK_PATH


def _digest(state: str) -> str:
    return hashlib.sha256(state.encode()).hexdigest()


def _aad(customer_id: str, state_hash: str) -> bytes:
    return associated_data(customer_id, _TABLE, state_hash, _VERIFIER)


def shown_error(error: str) -> str:
    """A provider's `error` code as it may be shown: the code itself, never free text."""
    return error if _ERROR_CODE.fullmatch(error) else "an unrecognised error"


class OAuthFlow:
    """Starts and finishes authorisations of OAuth 2.0 accounts.

    Args:
        engine: the metadata store.
        keyring: seals the PKCE verifiers.
        clients: the connectors' OAuth clients (with their secrets).
        endpoint: the token endpoint client.
        connectors, accounts, identity: the services the flow uses.
        redirect_uri: `callback_url(settings)`.
        ttl: how long a pending authorisation may wait for its callback.
        link_ttl: how long a one-time authorize link may wait for its browser.
    """

    def __init__(
        self,
        engine: AsyncEngine,
        keyring: KeyRing,
        clients: ClientConfigs,
        endpoint: TokenEndpoint,
        *,
        connectors: ConnectorService,
        accounts: AccountService,
        identity: IdentityService,
        redirect_uri: str,
        ttl: timedelta = STATE_TTL,
        link_ttl: timedelta = LINK_TTL,
    ) -> None:
        self._engine = engine
        self._keyring = keyring
        self._clients = clients
        self._endpoint = endpoint
        self._connectors = connectors
        self._accounts = accounts
        self._identity = identity
        self.redirect_uri = redirect_uri
        self._ttl = ttl
        self._link_ttl = link_ttl

    # --- authorize --------------------------------------------------------------------

    async def start(
        self,
        principal: Principal,
        connector_key: str,
        *,
        name: str | None = None,
        account_id: str | None = None,
    ) -> str:
        """Store a pending authorisation; return the provider's authorization URL.

        Raises:
            NotFound: the customer has no connector with this key (or no such account).
            ValidationFailed: the connector does not use OAuth 2.0.
            AccountNotAccessible, Forbidden: `account_id` is not the caller's to change.
            ProviderMismatch: `account_id` is not an OAuth 2.0 account of this connector.
        """
        connector = await self._authorisable(principal, connector_key, account_id)
        config = await self._clients.config(connector, with_secret=False)
        state, verifier = new_state(), new_code_verifier()
        url = authorization_request_url(
            config, redirect_uri=self.redirect_uri, state=state, code_verifier=verifier
        )
        state_hash = _digest(state)
        sealed = self._keyring.seal(verifier.encode(), _aad(principal.customer_id, state_hash))
        now = utcnow()
        async with self._engine.begin() as connection:
            # Sweep what expired (every customer's: the rows are useless to everyone).
            await connection.execute(delete(oauth_states).where(oauth_states.c.expires_at < now))
            await connection.execute(
                insert(oauth_states).values(
                    id=new_id(),
                    customer_id=principal.customer_id,
                    state_hash=state_hash,
                    user_id=principal.user_id,
                    connector_id=connector.id,
                    account_name=name,
                    account_id=account_id,
                    redirect_uri=self.redirect_uri,
                    verifier_key_id=sealed.key_id,
                    verifier_ciphertext=sealed.blob,
                    expires_at=now + self._ttl,
                    created_at=now,
                )
            )
        log.info("oauth_authorisation_started", connector_key=connector.key, reauthorise=account_id)
        return url

    async def _authorisable(
        self, principal: Principal, connector_key: str, account_id: str | None
    ) -> Connector:
        """The OAuth 2.0 connector to authorise, once the caller may do it.

        Raises:
            NotFound, ValidationFailed, AccountNotAccessible, Forbidden, ProviderMismatch:
                as for `start`.
        """
        connector = await self._connectors.get_by_key(principal, connector_key)
        if not isinstance(connector.auth, OAuth2Auth):
            message = f"connector {connector.key!r} does not use OAuth 2.0"
            raise ValidationFailed(
                message,
                [{"loc": ["path", "connector_key"], "msg": message, "type": "not_oauth2"}],
            )
        if account_id is not None:
            account = await self._accounts.managed(principal, account_id)
            if account.connector_key != connector.key or account.auth_method != "oauth2":
                raise ProviderMismatch(
                    f"account {account_id!r} is not an OAuth 2.0 account of {connector.key!r}"
                )
        return connector

    # --- the one-time link ------------------------------------------------------------

    async def issue_link(
        self,
        principal: Principal,
        connector_key: str,
        *,
        name: str | None = None,
        account_id: str | None = None,
    ) -> str:
        """Store a one-time link to `authorize` for a browser; return its URL.

        The link acts for `principal`, once, within `link_ttl`; only a digest of its
        secret is stored. What `start` would refuse is refused now, not in the browser.

        Raises:
            NotFound, ValidationFailed, AccountNotAccessible, Forbidden, ProviderMismatch:
                as for `start`.
        """
        connector = await self._authorisable(principal, connector_key, account_id)
        secret = secrets.token_urlsafe(32)
        now = utcnow()
        async with self._engine.begin() as connection:
            await connection.execute(delete(oauth_links).where(oauth_links.c.expires_at < now))
            await connection.execute(
                insert(oauth_links).values(
                    id=new_id(),
                    customer_id=principal.customer_id,
                    secret_hash=_digest(secret),
                    user_id=principal.user_id,
                    connector_key=connector.key,
                    account_name=name,
                    account_id=account_id,
                    expires_at=now + self._link_ttl,
                    created_at=now,
                )
            )
        log.info("oauth_link_issued", connector_key=connector.key, reauthorise=account_id)
        base = self.redirect_uri.removesuffix(CALLBACK_PATH)
        path = f"/api/v1/oauth/{quote(connector.key, safe='')}/authorize"
        return f"{base}{path}?{urlencode({'link': secret})}"

    async def start_from_link(self, connector_key: str, link: str) -> str:
        """Use a one-time link once: start the authorisation it was issued for.

        Raises:
            InvalidLink: the link is unknown, used, expired, or for another connector.
            NotFound, ValidationFailed, AccountNotAccessible, Forbidden, ProviderMismatch:
                as for `start` (the connector or the account changed since).
        """
        row = await self._take_link(link)
        if row.connector_key != connector_key:
            raise InvalidLink(_UNKNOWN_LINK)
        try:
            user = await self._identity.get_user(row.customer_id, row.user_id)
        except NotFound:
            raise InvalidLink(_UNKNOWN_LINK) from None
        principal = Principal(user.id, user.customer_id, user.role)
        return await self.start(
            principal, connector_key, name=row.account_name, account_id=row.account_id
        )

    async def _take_link(self, link: str) -> Row[Any]:
        """The link's row, deleted in the same transaction (a compare-and-swap: used once).

        Raises:
            InvalidLink: unknown, used or expired.
        """
        if len(link) > MAX_STATE_LENGTH:
            raise InvalidLink(_UNKNOWN_LINK)
        async with self._engine.begin() as connection:
            row = (
                await connection.execute(
                    select(oauth_links).where(oauth_links.c.secret_hash == _digest(link))
                )
            ).first()
            if row is None:
                raise InvalidLink(_UNKNOWN_LINK)
            taken = await connection.execute(delete(oauth_links).where(oauth_links.c.id == row.id))
            if taken.rowcount != 1:  # another request used it first
                raise InvalidLink(_UNKNOWN_LINK)
        if row.expires_at <= utcnow():
            seconds = int(self._link_ttl.total_seconds())
            raise InvalidLink(
                f"the authorisation link expired (a link is valid {seconds} s): ask for a new one"
            )
        return row

    # --- callback ---------------------------------------------------------------------

    async def finish(
        self, *, state: str | None, code: str | None, error: str | None, check_for: CheckFor
    ) -> Authorised:
        """Use the pending authorisation named by `state` once; create or re-authorise.

        Raises:
            InvalidAuthorisation: no, unknown, expired or used state; a provider `error`;
                no code; a code the provider refuses (another verifier, used, expired).
            TokenExchangeUnavailable: the token endpoint is down or refused the client.
            CredentialsRejected: the connector's auth script refused the new token.
            Exception: whatever `check_for`'s check raises when the script did not decide.
            gateway.errors.GatewayError: the account to re-authorise is gone or changed.
        """
        if not state:
            raise InvalidAuthorisation(
                "the callback has no state: start the authorisation again from the gateway"
            )
        pending = await self._take(state)
        if error is not None:
            raise InvalidAuthorisation(
                f"the provider did not authorise the gateway ({shown_error(error)})"
            )
        if not code:
            raise InvalidAuthorisation("the callback has no authorization code")
        principal = await self._principal(pending)
        connector = await self._connector(principal, pending.connector_id)
        config = await self._clients.config(connector)
        tokens = await self._exchange(config, code, pending)
        accepted, message = await check_for(principal, connector)(
            {ACCESS_FIELD: tokens.access_token}
        )
        if not accepted:
            raise CredentialsRejected(message or "the connector's auth script refused the token")
        provider = Provider(connector.key, connector.auth.method, connector.account_fields)
        name = pending.account_name
        if name is None and pending.account_id is None:
            name = connector.name
        account, reauthorised = await self._accounts.authorise_oauth(
            principal, provider, tokens, name=name, account_id=pending.account_id
        )
        log.info(
            "oauth_account_authorised",
            account_id=account.id,
            connector_key=connector.key,
            reauthorised=reauthorised,
        )
        return Authorised(account, reauthorised)

    async def _take(self, state: str) -> Pending:
        """The pending authorisation of `state`, deleted in the same transaction (used once)."""
        unknown = InvalidAuthorisation(
            "the authorisation request is unknown or was used already: start it again"
        )
        if len(state) > MAX_STATE_LENGTH:
            raise unknown
        state_hash = _digest(state)
        async with self._engine.begin() as connection:
            row = (
                await connection.execute(
                    select(oauth_states).where(oauth_states.c.state_hash == state_hash)
                )
            ).first()
            if row is None:
                raise unknown
            taken = await connection.execute(
                delete(oauth_states).where(oauth_states.c.id == row.id)
            )
            if taken.rowcount != 1:  # another callback took it first
                raise unknown
        if row.expires_at <= utcnow():
            raise InvalidAuthorisation("the authorisation request expired: start it again")
        try:
            verifier = self._keyring.open(
                Sealed(row.verifier_key_id, row.verifier_ciphertext),
                _aad(row.customer_id, state_hash),
            ).decode()
        except DecryptionError:
            raise unknown from None
        return Pending(
            row.customer_id,
            row.user_id,
            row.connector_id,
            row.account_name,
            row.account_id,
            row.redirect_uri,
            verifier,
        )

    async def _principal(self, pending: Pending) -> Principal:
        try:
            user = await self._identity.get_user(pending.customer_id, pending.user_id)
        except NotFound:
            raise InvalidAuthorisation("the user who started the authorisation is gone") from None
        return Principal(user.id, user.customer_id, user.role)

    async def _connector(self, principal: Principal, connector_id: str) -> Connector:
        async with self._engine.connect() as connection:
            guid = (
                await connection.execute(
                    select(connectors.c.guid).where(
                        connectors.c.id == connector_id,
                        connectors.c.customer_id == principal.customer_id,
                    )
                )
            ).scalar()
        if guid is None:
            raise InvalidAuthorisation("the connector of this authorisation is gone")
        return await self._connectors.get_connector(principal, guid)

    async def _exchange(self, config: OAuthClientConfig, code: str, pending: Pending) -> TokenSet:
        try:
            return await self._endpoint.exchange_code(
                config, code, pending.redirect_uri, pending.code_verifier
            )
        except InvalidGrant:
            raise InvalidAuthorisation(
                "the provider refused the authorization code (invalid_grant): it expired, was "
                "used, or belongs to another request; start the authorisation again"
            ) from None
        except ProviderUnavailable as exc:
            raise TokenExchangeUnavailable(
                "the provider's token endpoint is unavailable; start the authorisation again later",
                exc.retry_after,
            ) from None
        except ProviderError as exc:
            if exc.error:
                reason = shown_error(exc.error)
            else:
                reason = f"status {exc.status}" if exc.status else "no usable answer"
            raise TokenExchangeUnavailable(
                f"the provider's token endpoint refused the code exchange ({reason})"
            ) from None
