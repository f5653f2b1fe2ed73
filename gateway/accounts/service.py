"""Accounts: create (after the connector's auth script accepts them), read, share, use in runs."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final, Protocol

from sqlalchemy import delete, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway.accounts.fields import check_credentials, field_specs, split_secret
from gateway.accounts.tables import account_shares, accounts
from gateway.accounts.vault import SecretVault
from gateway.errors import (
    AccountNeedsReauth,
    AccountNotAccessible,
    CredentialsRejected,
    Forbidden,
    NotFound,
    ProviderMismatch,
)
from gateway.identity.principal import Principal
from gateway.store.cache import Cache
from gateway.store.generations import Area, Generations
from gateway.store.ids import new_id
from gateway.store.paging import paginate
from gateway.store.tables import users, utcnow

ACCESS_FIELD: Final = "accesstoken"
REFRESH_FIELD: Final = "refreshtoken"
# The runs' caches (decision 0019): each change of an account drops them at once here and at
# the next poll elsewhere. Decrypted secrets are kept shorter than the rest: a missed bump
# (a write by hand in the database) must not keep old credentials in use for long.
ACCOUNTS_MAX: Final = 10_000
ACCOUNTS_MAX_AGE_S: Final = 60.0
SECRETS_MAX: Final = 2_000
SECRETS_MAX_AGE_S: Final = 30.0

Key = tuple[str, str]
"""(customer id, account id)."""


class OAuthTokens(Protocol):
    """What an OAuth 2.0 grant gives an account (`gateway.oauth.TokenSet` has it)."""

    @property
    def access_token(self) -> str:
        """The access token."""

    @property
    def refresh_token(self) -> str | None:
        """The refresh token, if the provider issued one."""

    @property
    def expires_at(self) -> datetime | None:
        """When the access token expires, if the provider said."""


CredentialCheck = Callable[[dict[str, str]], Awaitable[tuple[bool, str | None]]]
"""Runs the connector's auth script on credentials: (accepted, the script's message).

A check may raise instead, to say more than "rejected" (the HTTP layer's raises the problem
of SPEC 4.3: an unreachable upstream, a refused host, a failed script)."""


@dataclass(frozen=True, slots=True)
class Provider:
    """What accounts need of a connector: its data-provider key and its fields."""

    key: str
    auth_method: str
    account_fields: Sequence[Any] = ()


@dataclass(frozen=True, slots=True)
class Account:
    """An account without its secrets."""

    id: str
    customer_id: str
    owner_id: str
    connector_key: str
    name: str
    auth_method: str
    status: str
    fields: dict[str, str]
    secret_fields: list[str]
    token_expires_at: datetime | None
    created_at: datetime
    updated_at: datetime
    shared_with: list[str] = field(default_factory=list)


def _account(row: Any, shared_with: list[str] | None = None) -> Account:
    return Account(
        row.id,
        row.customer_id,
        row.owner_id,
        row.connector_key,
        row.name,
        row.auth_method,
        row.status,
        dict(row.fields),
        list(row.secret_fields),
        row.token_expires_at,
        row.created_at,
        row.updated_at,
        shared_with or [],
    )


async def _shares(connection: AsyncConnection, account_ids: list[str]) -> dict[str, list[str]]:
    """The users each of `account_ids` is shared with, in one query."""
    shared: dict[str, list[str]] = {}
    if not account_ids:
        return shared
    rows = await connection.execute(
        select(account_shares.c.account_id, account_shares.c.user_id)
        .where(account_shares.c.account_id.in_(account_ids))
        .order_by(account_shares.c.account_id, account_shares.c.user_id)
    )
    for account_id, user_id in rows:
        shared.setdefault(account_id, []).append(user_id)
    return shared


class AccountService:
    """Stored credentials per user and data provider, secrets sealed by the vault.

    What runs read (`usable`, `fields_for_run`) is cached by customer and account; the
    access rule is applied to the cached account on every call, so a cached secret is
    only ever handed to a user the account is (still) the own or shared one of.
    Management reads (`get`, `list`) always read the store.

    Args:
        engine: the metadata store.
        vault: seals and opens the secret fields.
        generations: the process's cache generations (none: nothing cached, writes bump).
    """

    def __init__(
        self, engine: AsyncEngine, vault: SecretVault, generations: Generations | None = None
    ) -> None:
        self._engine = engine
        self._vault = vault
        self._generations = generations = generations or Generations(engine)
        self._records: Cache[Key, Account] = generations.cache(
            Area.ACCOUNTS, "accounts", max_size=ACCOUNTS_MAX, max_age_s=ACCOUNTS_MAX_AGE_S
        )
        self._secrets: Cache[Key, dict[str, str]] = generations.cache(
            Area.ACCOUNTS, "account_secrets", max_size=SECRETS_MAX, max_age_s=SECRETS_MAX_AGE_S
        )

    async def create(
        self,
        principal: Principal,
        provider: Provider,
        name: str,
        credentials: Mapping[str, Any],
        check: CredentialCheck,
    ) -> Account:
        """Validate credentials with the connector's auth script, then store them.

        Raises:
            ValidationFailed: the credentials do not match the connector's fields.
            CredentialsRejected: the auth script refused them (its message is the detail).
        """
        values = check_credentials(provider.auth_method, provider.account_fields, credentials)
        accepted, message = await check(values)
        if not accepted:
            raise CredentialsRejected(message or "the credentials were rejected")
        plain, secret = split_secret(
            field_specs(provider.auth_method, provider.account_fields), values
        )
        now = utcnow()
        account_id = new_id()
        async with self._engine.begin() as connection:
            await connection.execute(
                insert(accounts).values(
                    id=account_id,
                    customer_id=principal.customer_id,
                    owner_id=principal.user_id,
                    connector_key=provider.key,
                    name=name,
                    auth_method=provider.auth_method,
                    status="valid",
                    fields=plain,
                    secret_fields=sorted(secret),
                    version=1,
                    created_at=now,
                    updated_at=now,
                )
            )
            await self._vault.store(connection, principal.customer_id, account_id, secret)
        return await self.get(principal, account_id)

    async def get(self, principal: Principal, account_id: str) -> Account:
        """An account the caller may use or manage.

        Raises:
            NotFound: no such account in the caller's customer.
            AccountNotAccessible: it exists in the customer but is not the caller's.
        """
        account = await self._load(principal.customer_id, account_id)
        if not self._may_use(principal, account):
            raise AccountNotAccessible("the account is neither yours nor shared with you")
        return account

    async def _load(self, customer_id: str, account_id: str) -> Account:
        """The account with its shares, from the store.

        Raises:
            NotFound: no such account in the customer.
        """
        async with self._engine.connect() as connection:
            row = (
                await connection.execute(
                    select(accounts).where(
                        accounts.c.id == account_id, accounts.c.customer_id == customer_id
                    )
                )
            ).first()
            if row is None:
                raise NotFound("no such account")
            shares = await _shares(connection, [account_id])
        return _account(row, shares.get(account_id))

    @staticmethod
    def _may_use(principal: Principal, account: Account) -> bool:
        return (
            account.owner_id == principal.user_id
            or principal.user_id in account.shared_with
            or principal.is_admin_of(account.customer_id)
        )

    async def managed(self, principal: Principal, account_id: str) -> Account:
        """An account the caller may change: its owner's, or any of its customer's for admins.

        Raises:
            NotFound: no such account in the caller's customer.
            AccountNotAccessible: it is neither the caller's nor shared with it.
            Forbidden: it is shared with the caller, who is not an admin.
        """
        return await self._managed(principal, account_id)

    async def _managed(self, principal: Principal, account_id: str) -> Account:
        account = await self.get(principal, account_id)
        if account.owner_id != principal.user_id and not principal.is_admin_of(account.customer_id):
            raise Forbidden("only the account's owner and its customer's admins change it")
        return account

    async def list(
        self, principal: Principal, limit: int, cursor: str | None
    ) -> tuple[list[Account], str | None]:
        """The caller's own accounts and those shared with it (all of the customer's for admins)."""
        query = select(accounts).where(accounts.c.customer_id == principal.customer_id)
        if not principal.is_admin_of(principal.customer_id):
            shared = select(account_shares.c.account_id).where(
                account_shares.c.user_id == principal.user_id
            )
            query = query.where(
                or_(accounts.c.owner_id == principal.user_id, accounts.c.id.in_(shared))
            )
        async with self._engine.connect() as connection:
            rows, next_cursor = await paginate(connection, query, accounts.c.id, limit, cursor)
            shares = await _shares(connection, [row.id for row in rows])
        return [_account(row, shares.get(row.id)) for row in rows], next_cursor

    async def rename(self, principal: Principal, account_id: str, name: str) -> Account:
        """Change the account's name."""
        await self._managed(principal, account_id)
        async with self._generations.begin(Area.ACCOUNTS) as connection:
            await connection.execute(
                update(accounts)
                .where(accounts.c.id == account_id)
                .values(
                    name=name,
                    updated_at=utcnow(),
                    version=accounts.c.version + 1,
                )
            )
        return await self.get(principal, account_id)

    async def replace_credentials(
        self,
        principal: Principal,
        account_id: str,
        provider: Provider,
        credentials: Mapping[str, Any],
        check: CredentialCheck,
    ) -> Account:
        """Validate and store new credentials; the account becomes `valid` again.

        Raises:
            ProviderMismatch: `provider` is not the account's.
            ValidationFailed, CredentialsRejected: as for `create`.
        """
        account = await self._managed(principal, account_id)
        if account.connector_key != provider.key:
            raise ProviderMismatch("the account belongs to another data provider")
        values = check_credentials(provider.auth_method, provider.account_fields, credentials)
        accepted, message = await check(values)
        if not accepted:
            raise CredentialsRejected(message or "the credentials were rejected")
        plain, secret = split_secret(
            field_specs(provider.auth_method, provider.account_fields), values
        )
        async with self._generations.begin(Area.ACCOUNTS) as connection:
            await connection.execute(
                update(accounts)
                .where(accounts.c.id == account_id)
                .values(
                    fields=plain,
                    secret_fields=sorted(secret),
                    status="valid",
                    updated_at=utcnow(),
                    version=accounts.c.version + 1,
                )
            )
            await self._vault.store(connection, account.customer_id, account_id, secret)
        return await self.get(principal, account_id)

    async def authorise_oauth(
        self,
        principal: Principal,
        provider: Provider,
        grant: OAuthTokens,
        *,
        name: str | None,
        account_id: str | None = None,
    ) -> tuple[Account, bool]:
        """Store an OAuth 2.0 grant: a new account, or the re-authorisation of `account_id`.

        The tokens are sealed. A re-authorisation replaces them, makes the account `valid`,
        clears the refresh backoff, sets the expiry and bumps `version` (a refresh in flight
        then finds another refresh token stored and gives way: decision 0008). The caller
        has run the connector's auth script with the new access token already. Returns the
        account and whether it was re-authorised.

        Raises:
            NotFound, AccountNotAccessible, Forbidden: as for `managed` (re-authorisation).
            ProviderMismatch: the account is of another data provider or not OAuth 2.0.
        """
        tokens = {ACCESS_FIELD: grant.access_token}
        if grant.refresh_token:
            tokens[REFRESH_FIELD] = grant.refresh_token
        now = utcnow()
        if account_id is None:
            account_id = new_id()
            async with self._engine.begin() as connection:
                await connection.execute(
                    insert(accounts).values(
                        id=account_id,
                        customer_id=principal.customer_id,
                        owner_id=principal.user_id,
                        connector_key=provider.key,
                        name=name or provider.key,
                        auth_method="oauth2",
                        status="valid",
                        fields={},
                        secret_fields=sorted(tokens),
                        token_expires_at=grant.expires_at,
                        version=1,
                        created_at=now,
                        updated_at=now,
                    )
                )
                await self._vault.store(connection, principal.customer_id, account_id, tokens)
            return await self.get(principal, account_id), False
        account = await self._managed(principal, account_id)
        if account.connector_key != provider.key or account.auth_method != "oauth2":
            raise ProviderMismatch(
                f"the account is for {account.connector_key!r} ({account.auth_method}), "
                f"not an OAuth 2.0 account of {provider.key!r}"
            )
        values: dict[str, Any] = {
            "status": "valid",
            "token_expires_at": grant.expires_at,
            "refresh_backoff_until": None,
            "updated_at": now,
            "version": accounts.c.version + 1,
        }
        if name:
            values["name"] = name
        async with self._generations.begin(Area.ACCOUNTS) as connection:
            # The UPDATE first: on PostgreSQL it locks the row against a refresh's store.
            changed = await connection.execute(
                update(accounts).where(accounts.c.id == account_id).values(**values)
            )
            if changed.rowcount != 1:  # deleted since it was checked
                raise NotFound("no such account")
            kept = await self._vault.load(connection, account.customer_id, account_id)
            kept.pop(REFRESH_FIELD, None)
            merged = {**kept, **tokens}
            await connection.execute(
                update(accounts)
                .where(accounts.c.id == account_id)
                .values(secret_fields=sorted(merged))
            )
            await self._vault.store(connection, account.customer_id, account_id, merged)
        return await self.get(principal, account_id), True

    async def delete(self, principal: Principal, account_id: str) -> None:
        """Delete the account, its secrets, its shares and the app mappings naming it."""
        await self._managed(principal, account_id)
        async with self._generations.begin(Area.ACCOUNTS, Area.APPS) as connection:
            await connection.execute(delete(accounts).where(accounts.c.id == account_id))

    async def share(self, principal: Principal, account_id: str, user_id: str) -> Account:
        """Let another user of the same customer use the account.

        Raises:
            NotFound: no such user in the caller's customer.
        """
        account = await self._managed(principal, account_id)
        async with self._generations.begin(Area.ACCOUNTS) as connection:
            found = (
                await connection.execute(
                    select(users.c.id).where(
                        users.c.id == user_id,
                        users.c.customer_id == account.customer_id,
                    )
                )
            ).first()
            if found is None:
                raise NotFound("no such user")
            try:
                async with connection.begin_nested():
                    await connection.execute(
                        insert(account_shares).values(
                            customer_id=account.customer_id,
                            account_id=account_id,
                            user_id=user_id,
                            created_at=utcnow(),
                        )
                    )
            except IntegrityError:
                pass  # shared already
        return await self.get(principal, account_id)

    async def unshare(self, principal: Principal, account_id: str, user_id: str) -> None:
        """Stop sharing the account with `user_id` (harmless if it was not shared)."""
        await self._managed(principal, account_id)
        async with self._generations.begin(Area.ACCOUNTS) as connection:
            await connection.execute(
                delete(account_shares).where(
                    account_shares.c.account_id == account_id,
                    account_shares.c.user_id == user_id,
                )
            )

    async def usable(self, principal: Principal, account_id: str) -> Account:
        """An account the caller may run with: its own, or one shared with it.

        An admin manages its customer's accounts but does not borrow them: runs and app
        mappings use this rule, not `get`'s.

        Raises:
            NotFound: no such account in the caller's customer.
            AccountNotAccessible: it is neither the caller's nor shared with it.
        """
        key = (principal.customer_id, account_id)
        account = await self._records.get_or_load(key, lambda: self._load(*key))
        if principal.user_id != account.owner_id and principal.user_id not in account.shared_with:
            raise AccountNotAccessible("the account is neither yours nor shared with you")
        return account

    async def fields_for_run(
        self, principal: Principal, provider: Provider, account_id: str
    ) -> tuple[dict[str, str], tuple[str, ...]]:
        """The account's fields, secrets decrypted, for one run; and the secret values.

        Only the owner and the users it is shared with run with an account (an admin manages
        accounts but does not borrow them).

        Raises:
            NotFound, AccountNotAccessible, ProviderMismatch.
        """
        account = await self.usable(principal, account_id)
        if account.status == "needs_reauth":
            raise AccountNeedsReauth("the account must be authorised again")
        if account.connector_key != provider.key:
            raise ProviderMismatch(
                f"the account is for {account.connector_key!r}, "
                f"the connector needs {provider.key!r}"
            )
        key = (account.customer_id, account_id)
        secret = await self._secrets.get_or_load(key, lambda: self._open(*key))
        return {**account.fields, **secret}, tuple(secret.values())

    async def _open(self, customer_id: str, account_id: str) -> dict[str, str]:
        async with self._engine.connect() as connection:
            return await self._vault.load(connection, customer_id, account_id)


class AccountsForRuns:
    """The accounts a connector's runs use (the connectors' `AccountSource`)."""

    def __init__(self, accounts: AccountService) -> None:
        self._accounts = accounts

    async def metadata_for_run(
        self, principal: Principal, connector: Any, account_id: str
    ) -> tuple[dict[str, Any], tuple[str, ...]]:
        """`metadata.account` for a run of `connector` with the caller's `account_id`."""
        provider = Provider(connector.key, connector.auth.method, connector.account_fields)
        fields, secrets = await self._accounts.fields_for_run(principal, provider, account_id)
        return dict(fields), secrets
