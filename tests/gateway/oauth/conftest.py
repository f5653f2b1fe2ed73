"""OAuth fixtures: the fake authorization server, the real token endpoint and coordinator."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

import pytest
from aiohttp.web import Application
from sqlalchemy import insert, update
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.accounts.tables import accounts
from gateway.accounts.vault import SecretVault
from gateway.app import create_app
from gateway.crypto import KeyRing, new_key_entry
from gateway.egress import EgressClient
from gateway.oauth import OAuthClientConfig, RefreshCoordinator, TokenEndpoint
from gateway.settings import Settings
from gateway.store import new_id, utcnow
from tests.dbfixtures import make_customer, make_user
from tests.gateway.oauth.browser import Recorder
from tests.gateway.oauth.fake_provider import CLIENT_ID, CLIENT_SECRET, FakeProvider
from tests.openapi_check import Conformance, watch

KEY_ENTRY: Final = new_key_entry()
# Short enough for fast tests, long enough that a loaded machine does not lose a lease.
LEASE: Final = timedelta(seconds=5)
POLL: Final = 0.01
# Below the fake provider's 60 s token lifetime: a fresh token is not refreshed again.
MARGIN: Final = timedelta(seconds=10)
# Well above the fake provider's delays even on a loaded 2-core machine (a refresh that times
# out backs off, and the callers waiting on it fail).
ENDPOINT_TIMEOUT_S: Final = 3.0


@dataclass(frozen=True)
class OAuthAccount:
    """An OAuth account in the store, granted by the fake provider."""

    customer_id: str
    account_id: str


@pytest.fixture
async def provider() -> AsyncIterator[FakeProvider]:
    """A started fake authorization server."""
    server = FakeProvider()
    await server.start()
    yield server
    await server.close()


@pytest.fixture
def vault() -> SecretVault:
    """The vault, under a key made for this test session."""
    return SecretVault(KeyRing([KEY_ENTRY]))


@pytest.fixture
def config(provider: FakeProvider) -> OAuthClientConfig:
    """The gateway's client at the fake provider."""
    return OAuthClientConfig(
        token_url=provider.token_url,
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        scopes=("read", "write"),
        authorization_url=f"{provider.url}/authorize",
    )


@pytest.fixture
def endpoint(egress: EgressClient) -> TokenEndpoint:
    """The real token endpoint client over the real egress client, with a short timeout."""
    return TokenEndpoint(egress, timeout=ENDPOINT_TIMEOUT_S)


@pytest.fixture
def outcomes() -> list[str]:
    """Every outcome the coordinator reported."""
    return []


@pytest.fixture
def coordinator(
    engine: AsyncEngine, vault: SecretVault, endpoint: TokenEndpoint, outcomes: list[str]
) -> RefreshCoordinator:
    """A coordinator with test-sized lease and poll."""
    return RefreshCoordinator(
        engine,
        vault,
        endpoint,
        margin=MARGIN,
        lease=LEASE,
        poll=POLL,
        on_refresh=outcomes.append,
    )


async def make_oauth_account(
    engine: AsyncEngine,
    vault: SecretVault,
    access_token: str,
    refresh_token: str | None,
    expires_at: datetime | None,
) -> OAuthAccount:
    """Insert a customer, its user and an OAuth account holding the given tokens."""
    secrets = {"accesstoken": access_token}
    if refresh_token is not None:
        secrets["refreshtoken"] = refresh_token
    now = utcnow()
    async with engine.begin() as connection:
        customer_id = await make_customer(connection)
        user_id = await make_user(connection, customer_id)
        account_id = new_id()
        await connection.execute(
            insert(accounts).values(
                id=account_id,
                customer_id=customer_id,
                owner_id=user_id,
                connector_key="crm",
                name="CRM",
                auth_method="oauth2",
                status="valid",
                fields={},
                secret_fields=sorted(secrets),
                token_expires_at=expires_at,
                version=1,
                created_at=now,
                updated_at=now,
            )
        )
        await vault.store(connection, customer_id, account_id, secrets)
    return OAuthAccount(customer_id, account_id)


async def expire(engine: AsyncEngine, account: OAuthAccount) -> None:
    """Make the account's access token expired, as time would."""
    async with engine.begin() as connection:
        await connection.execute(
            update(accounts)
            .where(accounts.c.id == account.account_id)
            .values(token_expires_at=utcnow() - timedelta(seconds=1))
        )


@pytest.fixture
async def expired(engine: AsyncEngine, vault: SecretVault, provider: FakeProvider) -> OAuthAccount:
    """An account of a fresh grant whose access token has expired."""
    family = provider.grant()
    return await make_oauth_account(
        engine,
        vault,
        family.access_token,
        family.refresh_token,
        utcnow() - timedelta(minutes=1),
    )


@pytest.fixture
def recorder() -> Recorder:
    """Every response the app gave."""
    return Recorder()


@pytest.fixture
def app(settings: Settings, conformance: Conformance, recorder: Recorder) -> Application:
    """The real app, checked against openapi.yaml, its responses recorded."""
    application = watch(create_app(settings), conformance)
    application.middlewares.insert(0, recorder.middleware())
    return application
