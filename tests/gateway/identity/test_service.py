"""The identity service on both backends (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.errors import Conflict, NotFound
from gateway.identity.principal import Role
from gateway.identity.service import IdentityService
from gateway.identity.tokens import token_digest
from gateway.store.tables import api_tokens, utcnow


@pytest.fixture
def identity(engine: AsyncEngine) -> IdentityService:
    return IdentityService(engine)


async def test_token_authenticates_its_user_until_revoked(identity: IdentityService) -> None:
    customer = await identity.create_customer("acme")
    user = await identity.create_user(customer.id, "Ann@Acme.TEST ", "Ann", Role.ADMIN)
    assert user.email == "ann@acme.test"
    info, token = await identity.issue_token(user, "laptop")
    principal = await identity.authenticate(token)
    assert principal is not None
    assert (principal.user_id, principal.customer_id, principal.role) == (
        user.id,
        customer.id,
        Role.ADMIN,
    )
    assert principal.token_id == info.id
    await identity.revoke_token(user, info.id)
    assert await identity.authenticate(token) is None
    await identity.revoke_token(user, info.id)  # twice is harmless


async def test_tokens_are_stored_only_as_digests(
    identity: IdentityService, engine: AsyncEngine
) -> None:
    customer = await identity.create_customer("acme")
    user = await identity.create_user(customer.id, "ann@acme.test", "Ann", Role.MEMBER)
    _, token = await identity.issue_token(user, "ci")
    async with engine.connect() as connection:
        stored = (await connection.execute(select(api_tokens))).one()
    assert token not in str(tuple(stored))
    assert stored.token_hash == token_digest(token)


@pytest.mark.parametrize(
    "presented", ["", "gw_", "gw_" + "A" * 43, "Bearer x", "not-a-token-at-all-but-long-enough"]
)
async def test_unknown_tokens_do_not_authenticate(
    identity: IdentityService, presented: str
) -> None:
    assert await identity.authenticate(presented) is None


async def test_last_used_is_recorded_at_most_once_a_minute(
    identity: IdentityService, engine: AsyncEngine
) -> None:
    customer = await identity.create_customer("acme")
    user = await identity.create_user(customer.id, "ann@acme.test", "Ann", Role.MEMBER)
    _info, token = await identity.issue_token(user, "ci")
    await identity.authenticate(token)
    first = (await identity.list_tokens(user, 10, None))[0][0].last_used_at
    assert first is not None
    await identity.authenticate(token)
    assert (await identity.list_tokens(user, 10, None))[0][0].last_used_at == first
    async with engine.begin() as connection:
        await connection.execute(
            update(api_tokens).values(last_used_at=utcnow() - timedelta(minutes=5))
        )
    await identity.authenticate(token)
    later = (await identity.list_tokens(user, 10, None))[0][0].last_used_at
    assert later is not None
    assert later > first


async def test_another_customers_user_is_not_found(identity: IdentityService) -> None:
    acme = await identity.create_customer("acme")
    globex = await identity.create_customer("globex")
    hank = await identity.create_user(globex.id, "hank@globex.test", "Hank", Role.MEMBER)
    with pytest.raises(NotFound):
        await identity.get_user(acme.id, hank.id)


async def test_duplicates_conflict(identity: IdentityService) -> None:
    acme = await identity.create_customer("acme")
    with pytest.raises(Conflict):
        await identity.create_customer("acme")
    await identity.create_user(acme.id, "ann@acme.test", "Ann", Role.MEMBER)
    with pytest.raises(Conflict):
        await identity.create_user(acme.id, "ANN@acme.test", "Ann again", Role.MEMBER)
    with pytest.raises(NotFound):
        await identity.create_user("no-such-customer", "x@y.test", "X", Role.MEMBER)


async def test_bootstrap_runs_once(identity: IdentityService) -> None:
    admin, token = await identity.bootstrap("acme", "root@acme.test")
    assert admin.role is Role.PLATFORM_ADMIN
    principal = await identity.authenticate(token)
    assert principal is not None
    assert principal.role is Role.PLATFORM_ADMIN
    with pytest.raises(Conflict, match="bootstrapped already"):
        await identity.bootstrap("other", "root@other.test")


async def test_token_pages(identity: IdentityService) -> None:
    customer = await identity.create_customer("acme")
    user = await identity.create_user(customer.id, "ann@acme.test", "Ann", Role.MEMBER)
    issued = [(await identity.issue_token(user, f"t{i}"))[0].id for i in range(5)]
    first, cursor = await identity.list_tokens(user, 2, None)
    second, cursor2 = await identity.list_tokens(user, 2, cursor)
    third, cursor3 = await identity.list_tokens(user, 2, cursor2)
    assert [t.id for t in first + second + third] == issued
    assert cursor3 is None
