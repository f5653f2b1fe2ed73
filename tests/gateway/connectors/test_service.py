"""The connector and run services on SQLite and PostgreSQL, without HTTP."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.connectors.errors import Invalid
from gateway.connectors.models import (
    BasicAuth,
    ConnectorUpdate,
    IconSlot,
    RunCreate,
    ScriptKind,
)
from gateway.connectors.runs import RunService
from gateway.connectors.service import ConnectorService
from gateway.connectors.tables import connectors, runs
from gateway.egress import EgressClient
from gateway.errors import Conflict, Forbidden, NotFound
from gateway.store.tables import utcnow
from runtime.model import RunMode, RunStatus
from runtime.pool import WorkerPool
from tests.gateway.connectors.conftest import People, definition, make_png


async def test_connector_life_cycle_and_rights(engine: AsyncEngine, people: People) -> None:
    service = ConnectorService(engine)
    created = await service.create_connector(people.owner, definition())
    assert (created.scope.value, created.status.value, created.auth) == (
        "personal",
        "draft",
        BasicAuth(method="basic"),
    )
    assert await service.get_connector(people.colleague, created.guid) == created
    with pytest.raises(NotFound):
        await service.get_connector(people.outsider, created.guid)
    with pytest.raises(Conflict):
        await service.create_connector(people.colleague, definition())
    await service.create_connector(people.outsider, definition())  # keys are per customer

    change = ConnectorUpdate.model_validate({"name": "CRM 2"})
    with pytest.raises(Forbidden):
        await service.update_connector(people.colleague, created.guid, change)
    with pytest.raises(NotFound):
        await service.update_connector(people.outsider, created.guid, change)
    changed = await service.update_connector(people.admin, created.guid, change)
    assert (changed.name, changed.key, changed.created_at) == ("CRM 2", "crm", created.created_at)

    page, cursor = await service.list_connectors(people.colleague, 10, None)
    assert ([c.guid for c in page], cursor) == ([created.guid], None)

    with pytest.raises(Forbidden):
        await service.delete_connector(people.colleague, created.guid)
    await service.delete_connector(people.owner, created.guid)
    with pytest.raises(NotFound):
        await service.get_connector(people.owner, created.guid)


async def test_scripts_and_icons_are_replaced_in_place(engine: AsyncEngine, people: People) -> None:
    service = ConnectorService(engine)
    created = await service.create_connector(
        people.owner, definition(parameters=[{"name": "Region", "type": "discovery"}])
    )
    await service.put_script(people.owner, created.guid, ScriptKind.PROCESS, "", "DOMO.log(1);")
    second = await service.put_script(
        people.admin, created.guid, ScriptKind.PROCESS, "", "DOMO.log(2);"
    )
    await service.put_script(
        people.owner, created.guid, ScriptKind.DISCOVERY, "Region", "discovery.addOption('a');"
    )
    script = await service.get_script(people.colleague, created.guid, ScriptKind.PROCESS, "")
    assert (script.source, script.info) == ("DOMO.log(2);", second)
    with pytest.raises(Invalid, match="no discovery parameter named 'Other'"):
        await service.put_script(
            people.owner, created.guid, ScriptKind.DISCOVERY, "Other", "discovery.addOption(1);"
        )
    with pytest.raises(NotFound):
        await service.get_script(people.owner, created.guid, ScriptKind.AUTH, "")

    png = make_png(1024, 512)
    await service.put_icon(people.owner, created.guid, IconSlot.BANNER, make_png(1024, 512))
    await service.put_icon(people.owner, created.guid, IconSlot.BANNER, png)
    icon = await service.get_icon(people.colleague, created.guid, IconSlot.BANNER)
    assert (icon.png, icon.info.width, icon.info.height) == (png, 1024, 512)
    with pytest.raises(Invalid, match="must be 512x512 pixels; this PNG is 1024x512"):
        await service.put_icon(people.owner, created.guid, IconSlot.LOGO, png)

    reloaded = await service.get_connector(people.owner, created.guid)
    assert [(s.kind.value, s.param) for s in reloaded.scripts] == [
        ("discovery", "Region"),
        ("process", ""),
    ]
    assert [i.slot for i in reloaded.icons] == [IconSlot.BANNER]
    assert reloaded.updated_at >= icon.info.updated_at
    # Deleting the connector deletes its scripts and icons with it.
    await service.delete_connector(people.owner, created.guid)


class FakeSealer:
    """Seals by reversing (tests only): enough to see what is stored where."""

    def seal_client_secret(
        self, customer_id: str, connector_id: str, secret: str
    ) -> tuple[str, bytes]:
        return "k1", secret[::-1].encode()


async def test_a_sealer_stores_the_client_secret_sealed(
    engine: AsyncEngine, people: People
) -> None:
    service = ConnectorService(engine, sealer=FakeSealer())
    oauth = {
        "method": "oauth2",
        "authorization_url": "https://id.example.com/authorize",
        "token_url": "https://id.example.com/token",
        "client_id": "c",
        "client_secret": "s3cr3t",
    }
    created = await service.create_connector(people.owner, definition(auth=oauth))
    assert created.client_secret_set

    async def stored() -> tuple[bytes | None, str | None]:
        async with engine.connect() as connection:
            row = (
                await connection.execute(select(connectors).where(connectors.c.id == created.id))
            ).one()
        assert "s3cr3t" not in str(row.auth)
        return row.client_secret_ciphertext, row.client_secret_key_id

    assert await stored() == (b"t3rc3s", "k1")
    without = {k: v for k, v in oauth.items() if k != "client_secret"}
    keep = ConnectorUpdate.model_validate({"auth": without}, strict=False)
    assert (await service.update_connector(people.owner, created.guid, keep)).client_secret_set
    assert await stored() == (b"t3rc3s", "k1")
    basic = ConnectorUpdate.model_validate({"auth": {"method": "basic"}}, strict=False)
    assert not (await service.update_connector(people.owner, created.guid, basic)).client_secret_set
    assert await stored() == (None, None)


async def test_runs_are_stored_visible_and_purged(
    engine: AsyncEngine, people: People, pool: WorkerPool, egress: EgressClient
) -> None:
    connectors_service = ConnectorService(engine)
    service = RunService(engine, connectors_service, pool, egress)
    created = await connectors_service.create_connector(
        people.owner, definition(account_fields=[{"name": "token", "secret": True}])
    )
    await connectors_service.put_script(
        people.owner,
        created.guid,
        ScriptKind.AUTH,
        "",
        "DOMO.log(metadata.account.username + ' ' + metadata.account.token);"
        "auth.authenticationSuccess();",
    )
    body = RunCreate.model_validate(
        {
            "mode": "auth",
            "credentials": {"username": "u", "password": "p", "token": "tok-987"},
        },
        strict=False,
    )
    run = await service.run(people.owner, created.guid, body)
    assert (run.status, run.mode, run.result.logs) == (
        RunStatus.SUCCESS,
        RunMode.AUTH,
        ["u [redacted]"],
    )
    assert await service.get_run(people.owner, run.id) == run
    assert await service.get_run(people.admin, run.id) == run
    for stranger in (people.colleague, people.outsider):
        with pytest.raises(NotFound):
            await service.get_run(stranger, run.id)
    assert [r.id for r in (await service.list_runs(people.admin, created.guid, 5, None))[0]] == [
        run.id
    ]
    assert (await service.list_runs(people.colleague, None, 5, None))[0] == []

    async with engine.begin() as connection:
        await connection.execute(
            update(runs).where(runs.c.id == run.id).values(created_at=utcnow() - timedelta(days=31))
        )
    newer = await service.run(people.owner, created.guid, body)
    assert await service.purge_runs(utcnow() - timedelta(days=30)) == 1
    with pytest.raises(NotFound):
        await service.get_run(people.owner, run.id)
    assert (await service.get_run(people.owner, newer.id)).id == newer.id
