"""Managing users in the store, on both backends: paging, changes, deletion (decision 0010)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from sqlalchemy import Table, func, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.accounts.service import AccountService, Provider
from gateway.accounts.tables import account_secrets, account_shares, accounts
from gateway.accounts.vault import SecretVault
from gateway.connectors.models import ConnectorCreate
from gateway.connectors.service import ConnectorService
from gateway.connectors.tables import connectors, runs
from gateway.crypto import KeyRing, new_key_entry
from gateway.errors import Conflict, NotFound
from gateway.identity.principal import Principal, Role
from gateway.identity.service import IdentityService, User
from gateway.store.ids import new_id
from gateway.store.tables import api_tokens, utcnow

CRM = Provider("crm", "basic")
CONNECTOR = ConnectorCreate.model_validate_json(
    '{"kind": "action", "name": "Greeter", "key": "greeter", "description": "",'
    ' "auth": {"method": "basic"}, "allowed_hosts": [], "parameters": [], "reports": []}'
)


async def _accept(values: dict[str, str]) -> tuple[bool, str | None]:
    return True, None


def _principal(user: User) -> Principal:
    return Principal(user.id, user.customer_id, user.role)


@dataclass
class Acme:
    identity: IdentityService
    root: User
    ada: User
    ann: User
    bob: User


@pytest.fixture
async def acme(engine: AsyncEngine) -> Acme:
    identity = IdentityService(engine)
    customer = await identity.create_customer("acme")

    async def user(email: str, role: Role) -> User:
        return await identity.create_user(customer.id, email, email, role)

    return Acme(
        identity,
        await user("root@acme.test", Role.PLATFORM_ADMIN),
        await user("ada@acme.test", Role.ADMIN),
        await user("ann@acme.test", Role.MEMBER),
        await user("bob@acme.test", Role.MEMBER),
    )


async def _count(engine: AsyncEngine, table: Table, **where: str) -> int:
    query = select(func.count()).select_from(table)
    for name, value in where.items():
        query = query.where(table.c[name] == value)
    async with engine.connect() as connection:
        return int((await connection.execute(query)).scalar_one())


async def test_users_are_listed_a_page_at_a_time(acme: Acme) -> None:
    first, cursor = await acme.identity.list_users(acme.root.customer_id, 3, None)
    assert [u.email for u in first] == ["root@acme.test", "ada@acme.test", "ann@acme.test"]
    rest, last = await acme.identity.list_users(acme.root.customer_id, 3, cursor)
    assert ([u.email for u in rest], last) == (["bob@acme.test"], None)
    other = await acme.identity.create_customer("globex")
    assert await acme.identity.list_users(other.id, 3, None) == ([], None)


async def test_find_user_is_tenant_filtered_except_for_platform_admins(acme: Acme) -> None:
    globex = await acme.identity.create_customer("globex")
    gus = await acme.identity.create_user(globex.id, "gus@globex.test", "Gus", Role.ADMIN)
    assert (await acme.identity.find_user(_principal(acme.root), gus.id)).id == gus.id
    with pytest.raises(NotFound):
        await acme.identity.find_user(_principal(acme.ada), gus.id)
    with pytest.raises(NotFound):
        await acme.identity.find_user(_principal(gus), acme.ann.id)


async def test_update_changes_given_fields_and_keeps_emails_unique(acme: Acme) -> None:
    changed = await acme.identity.update_user(acme.ann, name="Ann B.", email=" Ann.B@Acme.test")
    assert (changed.name, changed.email, changed.role) == ("Ann B.", "ann.b@acme.test", Role.MEMBER)
    assert await acme.identity.get_user(acme.ann.customer_id, acme.ann.id) == changed
    with pytest.raises(Conflict):
        await acme.identity.update_user(changed, email="bob@acme.test")
    promoted = await acme.identity.update_user(changed, role=Role.ADMIN)
    assert promoted.role is Role.ADMIN


async def test_the_last_platform_admin_is_neither_demoted_nor_deleted(acme: Acme) -> None:
    with pytest.raises(Conflict, match="last platform admin"):
        await acme.identity.update_user(acme.root, role=Role.ADMIN)
    with pytest.raises(Conflict, match="last platform admin"):
        await acme.identity.delete_user(acme.root)
    # With a second one, either may go.
    second = await acme.identity.update_user(acme.ada, role=Role.PLATFORM_ADMIN)
    assert (await acme.identity.update_user(acme.root, role=Role.ADMIN)).role is Role.ADMIN
    with pytest.raises(Conflict, match="last platform admin"):
        await acme.identity.delete_user(second)


async def test_delete_takes_tokens_runs_accounts_and_shares_and_hands_over_connectors(
    acme: Acme, engine: AsyncEngine
) -> None:
    vault = SecretVault(KeyRing([new_key_entry()]))
    ann = _principal(acme.ann)
    account = await AccountService(engine, vault).create(
        ann, CRM, "Ann's CRM", {"username": "ann", "password": "pw"}, _accept
    )
    await AccountService(engine, vault).share(ann, account.id, acme.bob.id)
    bobs = await AccountService(engine, vault).create(
        _principal(acme.bob), CRM, "Bob's CRM", {"username": "bob", "password": "pw"}, _accept
    )
    await AccountService(engine, vault).share(_principal(acme.bob), bobs.id, acme.ann.id)
    connector = await ConnectorService(engine, sealer=vault).create_connector(ann, CONNECTOR)
    _, token = await acme.identity.issue_token(acme.ann, "laptop")
    async with engine.begin() as connection:
        await connection.execute(
            insert(runs).values(
                id=new_id(), customer_id=ann.customer_id, user_id=ann.user_id,
                connector_id=connector.id, connector_guid=connector.guid, kind="dev",
                mode="process", status="success", result={}, account_resolution={},
                created_at=utcnow(), duration_ms=1.0,
            )
        )  # fmt: skip

    with pytest.raises(Conflict, match="1 connector"):
        await acme.identity.delete_user(acme.ann)
    assert await acme.identity.authenticate(token) is not None  # the refusal changed nothing

    await acme.identity.delete_user(acme.ann, connectors_to=acme.ada)
    assert await acme.identity.authenticate(token) is None
    with pytest.raises(NotFound):
        await acme.identity.get_user(acme.ann.customer_id, acme.ann.id)
    assert await _count(engine, api_tokens, user_id=acme.ann.id) == 0
    assert await _count(engine, runs, user_id=acme.ann.id) == 0
    assert await _count(engine, accounts, owner_id=acme.ann.id) == 0
    assert await _count(engine, account_secrets, account_id=account.id) == 0
    assert await _count(engine, account_shares, account_id=account.id) == 0
    # Bob keeps his account, no longer shared with the user who is gone.
    assert await _count(engine, accounts, id=bobs.id) == 1
    assert await _count(engine, account_shares, account_id=bobs.id) == 0
    assert await _count(engine, connectors, owner_id=acme.ada.id) == 1
