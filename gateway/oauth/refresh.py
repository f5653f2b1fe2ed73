"""OAuth 2.0 token refresh with exactly one refresh in flight per account, deployment-wide.

How (SPEC 6; THREATS O1, O2, O4, O5; docs/decisions/0008-oauth-refresh.md):

1. **In process**, callers that need a refresh of the same account share one task
   (single-flight). The task runs detached from its callers, so a caller that is cancelled
   never interrupts a refresh between the provider's answer and the store.
2. **Across processes**, the task takes the account row's refresh lease with a conditional
   UPDATE (free or lapsed; one row changed = taken), the same on SQLite and PostgreSQL. A
   task that does not get it polls the row until the version changes or the lease is free
   or lapsed, then starts over.
3. Holding the lease, it **re-reads** the account (another process may have refreshed
   between our read and our lease) and calls the provider only if a refresh is still
   needed: outside any transaction, within a budget shorter than the lease.
4. **One transaction** stores the new access token, the rotated refresh token, the expiry
   and `version + 1` and frees the lease, conditional on still holding it. The new access
   token is handed out only after that commit, so a rotated refresh token cannot be lost
   once its access token is in use (O2).

`invalid_grant` marks the account `needs_reauth` (O4); 429/5xx/timeouts keep the tokens and
record `refresh_backoff_until` (O5). Lease and backoff times come from each process's clock:
the replicas' clocks must agree to well within the lease (NTP).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from functools import partial
from typing import Final, Protocol

import structlog
from sqlalchemy import Update, or_, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.accounts.tables import accounts
from gateway.accounts.vault import SecretVault
from gateway.errors import AccountNeedsReauth, GatewayError, NotFound, ProviderMismatch
from gateway.oauth.tokens import (
    InvalidGrant,
    OAuthClientConfig,
    ProviderError,
    ProviderUnavailable,
    TokenSet,
)
from gateway.store.cache import Cache
from gateway.store.generations import Area, Generations
from gateway.store.ids import new_id
from gateway.store.tables import utcnow

log = structlog.get_logger(__name__)

ACCESS_FIELD: Final = "accesstoken"
REFRESH_FIELD: Final = "refreshtoken"
# The provider call must end well before the lease lapses, or a second process could take
# the lease and replay the same refresh token (which revokes the family at strict providers).
_CALL_SHARE_OF_LEASE: Final = 0.75
# How long a task waits for another process's refresh before it gives up, in leases.
_WAIT_IN_LEASES: Final = 3
_MAX_DOUBLINGS: Final = 20
# `access_token`'s reads of the account (decision 0019): every write of the coordinator
# drops them before the new token is handed out, so this process never serves a token
# older than the one a refresh stored; a 401 and a refresh always read the store.
STATES_MAX: Final = 2_000
STATES_MAX_AGE_S: Final = 30.0

Key = tuple[str, str]


class RefreshOutcome(StrEnum):
    """What a refresh attempt came to; the label of `gateway_oauth_refreshes_total`."""

    REFRESHED = "refreshed"  # this process called the provider and stored the new tokens
    JOINED = "joined"  # a caller waited for a refresh already in flight in this process
    REFRESHED_ELSEWHERE = "refreshed_elsewhere"  # another process refreshed first
    INVALID_GRANT = "invalid_grant"  # the provider refused the grant: `needs_reauth`
    NO_REFRESH = "no_refresh_token"  # expired, nothing to refresh with: `needs_reauth`
    UNAVAILABLE = "unavailable"  # 429, 5xx, timeout, unreachable: backing off
    FAILED = "failed"  # any other refusal (`invalid_client`, bad answer): backing off
    LEASE_LOST = "lease_lost"  # the lease lapsed during the call; nothing was stored
    SUPERSEDED = "superseded"  # the account was re-authorised during the call


class RefreshUnavailable(GatewayError):
    """No usable token: the refresh failed or is backing off, and the stored token expired.

    Attributes:
        retry_after: seconds until the next refresh may be attempted, if known.
    """

    code = "upstream_unavailable"

    def __init__(self, detail: str, retry_after: float | None = None) -> None:
        super().__init__(detail, retry_after=retry_after)


class TokenRefresher(Protocol):
    """What the coordinator needs of a token endpoint (`TokenEndpoint`)."""

    async def refresh(self, config: OAuthClientConfig, refresh_token: str) -> TokenSet:
        """Trade `refresh_token` for a new token set.

        Raises:
            InvalidGrant, ProviderUnavailable, ProviderError.
        """


@dataclass(frozen=True, slots=True)
class _State:
    """What a decision needs of an account row and its secrets."""

    status: str
    version: int
    expires_at: datetime | None
    backoff_until: datetime | None
    secrets: dict[str, str] = field(repr=False)

    @property
    def access_token(self) -> str | None:
        return self.secrets.get(ACCESS_FIELD) or None

    @property
    def refresh_token(self) -> str | None:
        return self.secrets.get(REFRESH_FIELD) or None


@dataclass(frozen=True, slots=True)
class _Result:
    """The best token there is now, or why there is none.

    Shared by every caller of a flight; each raises an exception of its own from it.
    """

    token: str | None = field(default=None, repr=False)
    needs_reauth: str | None = None
    unavailable: str | None = None
    retry_after: float | None = None

    def check_reauth(self) -> None:
        if self.needs_reauth is not None:
            raise AccountNeedsReauth(self.needs_reauth)

    def token_or_raise(self) -> str:
        self.check_reauth()
        if self.token is None:
            raise RefreshUnavailable(self.unavailable or "no usable token", self.retry_after)
        return self.token


@dataclass(frozen=True, slots=True)
class _Flight:
    """A refresh in flight in this process; `rejected` is the token a 401 refused, if any."""

    task: asyncio.Task[_Result]
    rejected: str | None = field(repr=False)


def _better(result: _Result, rejected: str) -> str | None:
    """The result's token if it is not the rejected one.

    Raises:
        AccountNeedsReauth: the result says so.
    """
    result.check_reauth()
    return result.token if result.token not in (None, rejected) else None


def _failure(exc: Exception) -> tuple[RefreshOutcome, str, float | None]:
    """(outcome, reason, Retry-After) of a refresh the provider did not answer usefully."""
    if isinstance(exc, ProviderUnavailable):
        return RefreshOutcome.UNAVAILABLE, str(exc), exc.retry_after
    if isinstance(exc, TimeoutError):
        reason = "the token endpoint did not answer within the refresh lease"
        return RefreshOutcome.UNAVAILABLE, reason, None
    return RefreshOutcome.FAILED, str(exc), None


class _Superseded(Exception):
    """Rolls back a store: the account got other credentials during the call."""


class RefreshCoordinator:
    """Hands out OAuth access tokens, refreshing them with one refresh per account at a time.

    Args:
        engine: the metadata store.
        vault: seals and opens the account's token fields.
        endpoint: the token endpoint client.
        margin: a token expiring within this is refreshed before use.
        lease: how long a refresh may hold the account; the provider call gets 3/4 of it.
        poll: seconds between looks at a row whose lease another process holds.
        backoff_base: the first wait after a failure without `Retry-After`, doubled per
            failure in a row (counted per process).
        backoff_max: the longest wait, also the cap on `Retry-After`.
        on_refresh: called with each `RefreshOutcome` (for the metrics).
        generations: the process's cache generations (none: nothing cached, writes bump).

    Raises:
        ValueError: a duration is not positive.
    """

    def __init__(
        self,
        engine: AsyncEngine,
        vault: SecretVault,
        endpoint: TokenRefresher,
        *,
        margin: timedelta = timedelta(minutes=2),
        lease: timedelta = timedelta(seconds=30),
        poll: float = 0.05,
        backoff_base: timedelta = timedelta(seconds=5),
        backoff_max: timedelta = timedelta(minutes=15),
        on_refresh: Callable[[str], None] | None = None,
        generations: Generations | None = None,
    ) -> None:
        if lease <= timedelta(0) or poll <= 0 or backoff_base <= timedelta(0):
            raise ValueError("lease, poll and backoff_base must be positive")
        if margin < timedelta(0) or backoff_max < backoff_base:
            raise ValueError("margin must not be negative nor backoff_max below backoff_base")
        self._engine = engine
        self._vault = vault
        self._endpoint = endpoint
        self._margin = margin
        self._lease = lease
        self._poll = poll
        self._backoff_base = backoff_base.total_seconds()
        self._backoff_max = backoff_max.total_seconds()
        self._on_refresh = on_refresh
        self._flights: dict[Key, _Flight] = {}
        self._failures: dict[Key, int] = {}
        self._generations = generations = generations or Generations(engine)
        self._states: Cache[Key, _State] = generations.cache(
            Area.ACCOUNTS, "oauth_states", max_size=STATES_MAX, max_age_s=STATES_MAX_AGE_S
        )

    # --- public -----------------------------------------------------------------------

    async def access_token(
        self, customer_id: str, account_id: str, config: OAuthClientConfig
    ) -> str:
        """An access token valid for at least `margin`, refreshed first if needed.

        During a provider outage a token that expires within the margin but has not expired
        is returned as it is.

        Raises:
            NotFound: no such account in the customer.
            ProviderMismatch: the account does not use OAuth 2.0.
            AccountNeedsReauth: the grant is gone (`invalid_grant`, or expired with no
                refresh token); the provider is not asked again.
            RefreshUnavailable: the token expired and cannot be refreshed now.
        """
        key = (customer_id, account_id)
        state = await self._states.get_or_load(key, lambda: self._read(*key))
        result = self._decide(state, None, utcnow())
        if result is None:
            result = await self._board(customer_id, account_id, config, None)[1]
        return result.token_or_raise()

    async def after_unauthorized(
        self, customer_id: str, account_id: str, config: OAuthClientConfig, rejected_token: str
    ) -> str | None:
        """A better token than `rejected_token`, which an upstream answered 401 to.

        If the stored token already differs, it is returned without a refresh; otherwise one
        refresh is forced. None when nothing better exists (the refresh failed, is backing
        off, or there is no refresh token): the 401 stands.

        Raises:
            NotFound, ProviderMismatch, AccountNeedsReauth: as for `access_token`.
        """
        return _better(
            await self._replace(customer_id, account_id, config, rejected_token), rejected_token
        )

    async def refresh_now(
        self, customer_id: str, account_id: str, config: OAuthClientConfig
    ) -> str:
        """Refresh the token even if it is fresh (`POST /api/v1/accounts/{id}/refresh`).

        A backoff still applies: the provider asked for it.

        Raises:
            NotFound, ProviderMismatch, AccountNeedsReauth: as for `access_token`.
            RefreshUnavailable: the refresh failed or is backing off.
        """
        state = await self._read(customer_id, account_id)
        result = await self._replace(customer_id, account_id, config, state.access_token or "")
        return result.token_or_raise()

    async def _replace(
        self, customer_id: str, account_id: str, config: OAuthClientConfig, rejected: str
    ) -> _Result:
        """A token other than `rejected` (refreshing once if needed), or why there is none."""
        state = await self._read(customer_id, account_id)
        result = self._decide(state, rejected, utcnow())
        if result is not None:  # the stored token differs already, or no refresh is possible
            return result
        flight, outcome = self._board(customer_id, account_id, config, rejected)
        result = await outcome
        if flight.rejected != rejected and result.token in (None, rejected):
            # We joined a refresh for another token, which kept this one: force our own.
            result = await self._board(customer_id, account_id, config, rejected)[1]
        return result

    async def close(self) -> None:
        """Let refreshes in flight finish storing (they may hold rotated tokens)."""
        tasks = [flight.task for flight in self._flights.values()]
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=self._lease.total_seconds())
            for task in pending:
                task.cancel()

    # --- single flight ----------------------------------------------------------------

    def _board(
        self, customer_id: str, account_id: str, config: OAuthClientConfig, rejected: str | None
    ) -> tuple[_Flight, asyncio.Future[_Result]]:
        """Join the account's flight in this process, or start one."""
        key = (customer_id, account_id)
        flight = self._flights.get(key)
        if flight is not None:
            self._count(RefreshOutcome.JOINED)
        else:
            task = asyncio.create_task(
                self._fly(customer_id, account_id, config, rejected),
                name=f"oauth-refresh-{account_id}",
            )
            flight = _Flight(task, rejected)
            self._flights[key] = flight
            task.add_done_callback(partial(self._landed, key))
        # Shielded: a caller's cancellation must not cancel a refresh others wait for.
        return flight, asyncio.shield(flight.task)

    def _landed(self, key: Key, task: asyncio.Task[_Result]) -> None:
        flight = self._flights.get(key)
        if flight is not None and flight.task is task:
            del self._flights[key]
        if not task.cancelled():
            task.exception()  # retrieved here; every waiting caller re-raises it

    async def _fly(
        self, customer_id: str, account_id: str, config: OAuthClientConfig, rejected: str | None
    ) -> _Result:
        loop = asyncio.get_running_loop()
        give_up = loop.time() + self._lease.total_seconds() * _WAIT_IN_LEASES
        before: str | None = None
        while True:
            state = await self._read(customer_id, account_id)
            before = before or state.access_token
            result = self._decide(state, rejected, utcnow())
            if result is not None:
                if result.token not in (None, before):
                    self._count(RefreshOutcome.REFRESHED_ELSEWHERE)
                return result
            owner = new_id()
            if await self._acquire(account_id, owner):
                deadline = loop.time() + self._lease.total_seconds() * _CALL_SHARE_OF_LEASE
                return await self._refresh_leased(
                    customer_id, account_id, config, rejected, owner, deadline, state
                )
            if not await self._await_holder(account_id, state.version, give_up):
                return _Result(unavailable="another refresh of this account did not finish")

    # --- decisions --------------------------------------------------------------------

    def _decide(self, state: _State, rejected: str | None, now: datetime) -> _Result | None:
        """The answer without refreshing, or None when a refresh must be tried."""
        if state.status != "valid":
            return _Result(needs_reauth="the account must be authorised again")
        token = state.access_token
        if rejected is None:
            if self._valid_at(state, now + self._margin):
                return _Result(token)
        elif token != rejected and self._valid_at(state, now):
            return _Result(token)  # someone refreshed since the rejected token was used
        if state.backoff_until is not None and state.backoff_until > now:
            wait = (state.backoff_until - now).total_seconds()
            return self._fallback(state, rejected, now, "token refresh is backing off", wait)
        if state.refresh_token is None and (rejected is not None or self._valid_at(state, now)):
            return self._fallback(state, rejected, now, "the account has no refresh token")
        return None

    @staticmethod
    def _valid_at(state: _State, when: datetime) -> bool:
        if state.access_token is None:
            return False
        return state.expires_at is None or state.expires_at > when

    def _fallback(
        self,
        state: _State,
        rejected: str | None,
        now: datetime,
        detail: str,
        retry_after: float | None = None,
    ) -> _Result:
        """The current token if it has not expired (and was not refused), else the reason."""
        if rejected is None and self._valid_at(state, now):
            return _Result(state.access_token)
        return _Result(unavailable=detail, retry_after=retry_after)

    # --- holding the lease ------------------------------------------------------------

    async def _refresh_leased(
        self,
        customer_id: str,
        account_id: str,
        config: OAuthClientConfig,
        rejected: str | None,
        owner: str,
        deadline: float,
        seen: _State,
    ) -> _Result:
        key = (customer_id, account_id)
        try:
            # Re-read: another process may have refreshed between our read and our lease.
            state = await self._read(customer_id, account_id)
            result = self._decide(state, rejected, utcnow())
            if result is not None:
                await self._release(account_id, owner)
                if result.token not in (None, seen.access_token):
                    self._count(RefreshOutcome.REFRESHED_ELSEWHERE)
                return result
            if state.refresh_token is None:
                return await self._give_up(
                    key, owner, RefreshOutcome.NO_REFRESH, "the token expired"
                )
            try:
                async with asyncio.timeout_at(deadline):
                    tokens = await self._endpoint.refresh(config, state.refresh_token)
            except InvalidGrant:
                return await self._give_up(
                    key, owner, RefreshOutcome.INVALID_GRANT, "the provider revoked the grant"
                )
            except (ProviderUnavailable, ProviderError, TimeoutError) as exc:
                outcome, reason, retry_after = _failure(exc)
                return await self._back_off(
                    key, owner, state, rejected, outcome, reason, retry_after
                )
            return await self._store(key, owner, state, rejected, tokens)
        except BaseException:
            await self._release_quietly(account_id, owner)
            raise

    async def _store(
        self, key: Key, owner: str, state: _State, rejected: str | None, tokens: TokenSet
    ) -> _Result:
        """Store the new tokens in one transaction, if we still hold the lease (O2)."""
        customer_id, account_id = key
        refresh_token = tokens.refresh_token or state.refresh_token
        try:
            async with self._generations.begin(Area.ACCOUNTS) as connection:
                held = await connection.execute(
                    self._leased(account_id, owner).values(
                        token_expires_at=tokens.expires_at,
                        refresh_backoff_until=None,
                        updated_at=utcnow(),
                        version=accounts.c.version + 1,
                    )
                )
                if held.rowcount != 1:
                    return self._lease_lost(account_id)
                # The row is ours now (and locked on PostgreSQL): re-authorisation during
                # the call replaced the tokens, and its grant wins over the old one.
                current = await self._vault.load(connection, customer_id, account_id)
                if current.get(REFRESH_FIELD) != state.refresh_token:
                    raise _Superseded
                merged = dict(current)
                merged[ACCESS_FIELD] = tokens.access_token
                if refresh_token is not None:
                    merged[REFRESH_FIELD] = refresh_token
                await connection.execute(
                    update(accounts)
                    .where(accounts.c.id == account_id)
                    .values(secret_fields=sorted(merged))
                )
                await self._vault.store(connection, customer_id, account_id, merged)
        except _Superseded:
            await self._release(account_id, owner)
            self._count(RefreshOutcome.SUPERSEDED)
            log.info("oauth_refresh_superseded", account_id=account_id)
            # The new grant's tokens are what the account holds now.
            now = utcnow()
            fresh = await self._read(customer_id, account_id)
            return self._decide(fresh, rejected, now) or self._fallback(
                fresh, rejected, now, "the account was authorised again during the refresh"
            )
        self._failures.pop(key, None)
        self._count(RefreshOutcome.REFRESHED)
        log.info(
            "oauth_token_refreshed",
            account_id=account_id,
            expires_at=tokens.expires_at.isoformat() if tokens.expires_at else None,
            rotated=tokens.refresh_token not in (None, state.refresh_token),
        )
        return _Result(tokens.access_token)

    def _lease_lost(self, account_id: str) -> _Result:
        # The new tokens are not stored, so the access token is not handed out either (O2).
        self._count(RefreshOutcome.LEASE_LOST)
        log.warning("oauth_refresh_lease_lost", account_id=account_id)
        return _Result(unavailable="the refresh took longer than its lease; retry")

    async def _give_up(self, key: Key, owner: str, outcome: RefreshOutcome, why: str) -> _Result:
        """Mark the account `needs_reauth` and free the lease (O4): no retry loop."""
        async with self._generations.begin(Area.ACCOUNTS) as connection:
            await connection.execute(
                self._leased(key[1], owner).values(
                    status="needs_reauth", updated_at=utcnow(), version=accounts.c.version + 1
                )
            )
        self._failures.pop(key, None)
        self._count(outcome)
        log.warning("oauth_account_needs_reauth", account_id=key[1], outcome=str(outcome))
        return _Result(needs_reauth=f"{why}: the account must be authorised again")

    async def _back_off(
        self,
        key: Key,
        owner: str,
        state: _State,
        rejected: str | None,
        outcome: RefreshOutcome,
        reason: str,
        retry_after: float | None,
    ) -> _Result:
        """Keep the tokens, record when to try again and free the lease (O5)."""
        failures = self._failures.get(key, 0) + 1
        self._failures[key] = failures
        if retry_after is None:
            retry_after = self._backoff_base * 2 ** min(failures - 1, _MAX_DOUBLINGS)
        wait = min(max(retry_after, 0.0), self._backoff_max)
        now = utcnow()
        async with self._generations.begin(Area.ACCOUNTS) as connection:
            await connection.execute(
                self._leased(key[1], owner).values(
                    refresh_backoff_until=now + timedelta(seconds=wait),
                    updated_at=now,
                    version=accounts.c.version + 1,
                )
            )
        self._count(outcome)
        log.warning(
            "oauth_refresh_backing_off",
            account_id=key[1],
            outcome=str(outcome),
            reason=reason,
            retry_in_s=wait,
        )
        detail = f"the access token could not be refreshed ({reason})"
        return self._fallback(state, rejected, now, detail, wait)

    # --- the row ----------------------------------------------------------------------

    async def _read(self, customer_id: str, account_id: str) -> _State:
        async with self._engine.connect() as connection:
            row = (
                await connection.execute(
                    select(
                        accounts.c.auth_method,
                        accounts.c.status,
                        accounts.c.version,
                        accounts.c.token_expires_at,
                        accounts.c.refresh_backoff_until,
                    ).where(accounts.c.id == account_id, accounts.c.customer_id == customer_id)
                )
            ).first()
            if row is None:
                raise NotFound("no such account")
            if row.auth_method != "oauth2":
                raise ProviderMismatch("the account does not use OAuth 2.0")
            secrets = await self._vault.load(connection, customer_id, account_id)
        return _State(
            row.status, row.version, row.token_expires_at, row.refresh_backoff_until, secrets
        )

    async def _acquire(self, account_id: str, owner: str) -> bool:
        """Take the refresh lease if it is free or lapsed: compare-and-swap, no row lock."""
        now = utcnow()
        async with self._engine.begin() as connection:
            taken = await connection.execute(
                update(accounts)
                .where(
                    accounts.c.id == account_id,
                    or_(
                        accounts.c.refresh_lease_owner.is_(None),
                        accounts.c.refresh_lease_expires_at.is_(None),
                        accounts.c.refresh_lease_expires_at < now,
                    ),
                )
                .values(refresh_lease_owner=owner, refresh_lease_expires_at=now + self._lease)
            )
        return taken.rowcount == 1

    def _leased(self, account_id: str, owner: str) -> Update:
        """An UPDATE of the row that applies only while `owner` holds it, and frees it."""
        return (
            update(accounts)
            .where(accounts.c.id == account_id, accounts.c.refresh_lease_owner == owner)
            .values(refresh_lease_owner=None, refresh_lease_expires_at=None)
        )

    async def _release(self, account_id: str, owner: str) -> None:
        async with self._engine.begin() as connection:
            await connection.execute(self._leased(account_id, owner))

    async def _release_quietly(self, account_id: str, owner: str) -> None:
        try:
            await self._release(account_id, owner)
        except Exception:  # the lease lapses on its own; the original error matters more
            log.warning("oauth_refresh_lease_not_released", account_id=account_id)

    async def _await_holder(self, account_id: str, seen_version: int, give_up: float) -> bool:
        """Wait while another process holds the lease; False if it takes too long."""
        loop = asyncio.get_running_loop()
        query = select(
            accounts.c.version,
            accounts.c.refresh_lease_owner,
            accounts.c.refresh_lease_expires_at,
        ).where(accounts.c.id == account_id)
        while loop.time() < give_up:
            await asyncio.sleep(self._poll)
            async with self._engine.connect() as connection:
                row = (await connection.execute(query)).first()
            if (
                row is None
                or row.version != seen_version
                or row.refresh_lease_owner is None
                or row.refresh_lease_expires_at is None
                or row.refresh_lease_expires_at <= utcnow()
            ):
                return True
        return False

    def _count(self, outcome: RefreshOutcome) -> None:
        if self._on_refresh is not None:
            self._on_refresh(str(outcome))
