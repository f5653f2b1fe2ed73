"""Accounts and their secrets on both backends (THREATS S2, S3, S4, I4)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.accounts.service import AccountService, Provider
from gateway.accounts.tables import account_secrets, accounts
from gateway.accounts.vault import RotationReport, SecretVault, rotate_secrets
from gateway.crypto import DecryptionError, KeyRing, new_key_entry
from gateway.errors import (
    AccountNotAccessible,
    CredentialsRejected,
    Forbidden,
    NotFound,
    ProviderMismatch,
    ValidationFailed,
)
from gateway.identity.principal import Principal, Role
from gateway.identity.service import IdentityService

CANARY = "canary-pw-5Qx9Lk"
CRM = Provider("crm", "basic", [{"name": "instance"}, {"name": "pin", "secret": True}])
KEY = new_key_entry()


async def accept(values: dict[str, str]) -> tuple[bool, str | None]:
    return True, None


async def refuse(values: dict[str, str]) -> tuple[bool, str | None]:
    return False, "Your username and password are incorrect."


@dataclass
class World:
    service: AccountService
    ann: Principal
    bob: Principal
    admin: Principal
    stranger: Principal


@pytest.fixture
async def world(engine: AsyncEngine) -> World:
    identity = IdentityService(engine)
    acme = await identity.create_customer("acme")
    globex = await identity.create_customer("globex")

    async def principal(customer_id: str, email: str, role: Role) -> Principal:
        user = await identity.create_user(customer_id, email, email, role)
        return Principal(user.id, customer_id, role)

    return World(
        AccountService(engine, SecretVault(KeyRing([KEY]))),
        await principal(acme.id, "ann@acme.test", Role.MEMBER),
        await principal(acme.id, "bob@acme.test", Role.MEMBER),
        await principal(acme.id, "ada@acme.test", Role.ADMIN),
        await principal(globex.id, "gus@globex.test", Role.ADMIN),
    )


CREDENTIALS = {"username": "ann", "password": CANARY, "instance": "eu1", "pin": "4321"}


async def test_create_keeps_secrets_sealed_and_usable(world: World, engine: AsyncEngine) -> None:
    account = await world.service.create(world.ann, CRM, "Ann's CRM", CREDENTIALS, accept)
    assert account.fields == {"username": "ann", "instance": "eu1"}
    assert account.secret_fields == ["password", "pin"]
    assert CANARY not in repr(account)
    fields, secrets = await world.service.fields_for_run(world.ann, CRM, account.id)
    assert fields == CREDENTIALS
    assert set(secrets) == {CANARY, "4321"}
    # S3: a dump of the tables holds no canary.
    async with engine.connect() as connection:
        dump = [
            tuple(row)
            for table in (accounts, account_secrets)
            for row in await connection.execute(select(table))
        ]
    assert CANARY.encode() not in repr(dump).encode()
    assert CANARY not in repr(dump)


async def test_rejected_and_malformed_credentials_store_nothing(
    world: World, engine: AsyncEngine
) -> None:
    with pytest.raises(CredentialsRejected, match="are incorrect"):
        await world.service.create(world.ann, CRM, "x", CREDENTIALS, refuse)
    with pytest.raises(ValidationFailed) as undeclared:
        await world.service.create(world.ann, CRM, "x", {**CREDENTIALS, "token": "t"}, accept)
    assert undeclared.value.errors[0]["loc"] == ["credentials", "token"]
    with pytest.raises(ValidationFailed) as missing:
        await world.service.create(world.ann, CRM, "x", {"username": "ann"}, accept)
    assert ["credentials", "password"] in [e["loc"] for e in missing.value.errors]
    assert CANARY not in str(missing.value.errors)
    async with engine.connect() as connection:
        assert (await connection.execute(select(accounts))).first() is None


async def test_s2_a_ciphertext_moved_to_another_account_does_not_open(
    world: World, engine: AsyncEngine
) -> None:
    mine = await world.service.create(world.ann, CRM, "mine", CREDENTIALS, accept)
    other = await world.service.create(
        world.bob, CRM, "bob's", {**CREDENTIALS, "password": "bobs-password"}, accept
    )
    async with engine.begin() as connection:
        stolen = (
            await connection.execute(
                select(account_secrets).where(
                    account_secrets.c.account_id == mine.id, account_secrets.c.field == "password"
                )
            )
        ).one()
        await connection.execute(
            update(account_secrets)
            .where(account_secrets.c.account_id == other.id, account_secrets.c.field == "password")
            .values(ciphertext=stolen.ciphertext, key_id=stolen.key_id)
        )
    with pytest.raises(DecryptionError):
        await world.service.fields_for_run(world.bob, CRM, other.id)


async def test_i4_access_rules(world: World) -> None:
    account = await world.service.create(world.ann, CRM, "mine", CREDENTIALS, accept)
    with pytest.raises(AccountNotAccessible):
        await world.service.fields_for_run(world.bob, CRM, account.id)
    with pytest.raises(NotFound):
        await world.service.get(world.stranger, account.id)
    with pytest.raises(AccountNotAccessible):
        await world.service.share(world.bob, account.id, world.bob.user_id)
    with pytest.raises(NotFound):
        await world.service.share(world.ann, account.id, world.stranger.user_id)
    await world.service.share(world.ann, account.id, world.bob.user_id)
    await world.service.share(world.ann, account.id, world.bob.user_id)  # idempotent
    fields, _ = await world.service.fields_for_run(world.bob, CRM, account.id)
    assert fields["password"] == CANARY
    with pytest.raises(Forbidden):  # a user it is shared with uses it, but does not manage it
        await world.service.share(world.bob, account.id, world.admin.user_id)
    with pytest.raises(ProviderMismatch):
        await world.service.fields_for_run(world.bob, Provider("erp", "basic"), account.id)
    # Admins manage accounts but do not borrow them for runs.
    assert (await world.service.get(world.admin, account.id)).id == account.id
    with pytest.raises(AccountNotAccessible):
        await world.service.fields_for_run(world.admin, CRM, account.id)
    await world.service.unshare(world.ann, account.id, world.bob.user_id)
    with pytest.raises(AccountNotAccessible):
        await world.service.fields_for_run(world.bob, CRM, account.id)


async def test_lists_show_own_and_shared_accounts(world: World) -> None:
    mine = await world.service.create(world.ann, CRM, "mine", CREDENTIALS, accept)
    bobs = await world.service.create(world.bob, CRM, "bob's", CREDENTIALS, accept)
    await world.service.share(world.bob, bobs.id, world.ann.user_id)
    listed, _ = await world.service.list(world.ann, 50, None)
    assert [a.id for a in listed] == [mine.id, bobs.id]
    only_own, _ = await world.service.list(world.bob, 50, None)
    assert [a.id for a in only_own] == [bobs.id]
    everything, _ = await world.service.list(world.admin, 50, None)
    assert len(everything) == 2
    assert (await world.service.list(world.stranger, 50, None))[0] == []


async def test_s4_rotation_interrupted_midway_is_finished_by_a_rerun(
    world: World, engine: AsyncEngine
) -> None:
    created = [
        await world.service.create(
            world.ann, CRM, f"a{i}", {**CREDENTIALS, "password": f"pw{i}"}, accept
        )
        for i in range(5)
    ]
    newer = new_key_entry()
    ring = KeyRing([newer, KEY])

    async def crash(report: RotationReport) -> None:
        raise RuntimeError("killed midway")

    with pytest.raises(RuntimeError, match="killed midway"):
        await rotate_secrets(engine, ring, batch=3, after_batch=crash)
    async with engine.connect() as connection:
        key_ids = [row.key_id for row in await connection.execute(select(account_secrets))]
    assert key_ids.count(newer.split(":")[0]) == 3
    report = await rotate_secrets(engine, ring, batch=3)
    assert report.resealed == 7
    rotated = AccountService(engine, SecretVault(KeyRing([newer])))  # the old key is retired
    for i, account in enumerate(created):
        fields, _ = await rotated.fields_for_run(world.ann, CRM, account.id)
        assert fields["password"] == f"pw{i}"
    assert (await rotate_secrets(engine, ring)).resealed == 0
