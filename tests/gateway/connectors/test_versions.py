"""Published versions, what a run uses, and action scopes, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.connectors.errors import ActionNotFound, Invalid, ScopeNotAllowed
from gateway.connectors.models import (
    ConnectorUpdate,
    IconSlot,
    Scope,
    ScriptKind,
)
from gateway.connectors.records import Connector
from gateway.connectors.service import ConnectorService
from gateway.connectors.tables import connectors
from gateway.errors import Conflict, Forbidden, NotFound
from gateway.identity.principal import Principal
from tests.gateway.connectors.conftest import People, definition, make_png


async def drafted(service: ConnectorService, who: Principal, key: str = "crm") -> Connector:
    """An action with both scripts, owned by `who`."""
    created = await service.create_connector(who, definition(key))
    await service.put_script(
        who, created.guid, ScriptKind.AUTH, "", "auth.authenticationSuccess();"
    )
    await service.put_script(who, created.guid, ScriptKind.PROCESS, "", "DOMO.log('v1');")
    return created


async def test_publish_snapshots_the_draft_and_numbers_the_versions(
    engine: AsyncEngine, people: People
) -> None:
    service = ConnectorService(engine)
    created = await drafted(service, people.owner)
    await service.put_icon(people.owner, created.guid, IconSlot.ICON, make_png(512, 512))

    first = await service.versions.publish(people.admin, created.guid)
    assert (first.number, first.created_by) == (1, people.admin.user_id)
    assert first.definition["allowed_hosts"] == ["api.example.com"]
    assert first.definition["auth"] == {"method": "basic"}
    assert [(s.kind, s.param) for s in first.scripts] == [
        (ScriptKind.AUTH, ""),
        (ScriptKind.PROCESS, ""),
    ]
    icon = (await service.get_connector(people.owner, created.guid)).icons[0]
    assert first.icons == {"icon": icon.sha256}
    # Publishing made the personal action a customer one.
    assert (await service.get_connector(people.owner, created.guid)).scope is Scope.CUSTOMER

    # The draft moves on; the published version does not.
    update_body = ConnectorUpdate.model_validate({"allowed_hosts": ["other.example.com"]})
    await service.update_connector(people.owner, created.guid, update_body)
    await service.put_script(people.owner, created.guid, ScriptKind.PROCESS, "", "DOMO.log('v2');")
    assert await service.versions.get_version(people.colleague, created.guid, 1) == first
    second = await service.versions.publish(people.admin, created.guid)
    assert second.number == 2
    assert second.definition["allowed_hosts"] == ["other.example.com"]
    assert second.scripts[1].sha256 != first.scripts[1].sha256

    page, cursor = await service.versions.list_versions(people.colleague, created.guid, 1, None)
    assert [v.number for v in page] == [2]
    rest, end = await service.versions.list_versions(people.colleague, created.guid, 1, cursor)
    assert ([v.number for v in rest], end) == ([1], None)


async def test_publish_rights_and_missing_scripts(engine: AsyncEngine, people: People) -> None:
    service = ConnectorService(engine)
    created = await service.create_connector(people.owner, definition())
    with pytest.raises(Forbidden):
        await service.versions.publish(people.owner, created.guid)
    for stranger in (people.outsider, people.platform):
        with pytest.raises(NotFound):
            await service.versions.publish(stranger, created.guid)
        with pytest.raises(NotFound):
            await service.versions.list_versions(stranger, created.guid, 50, None)
    with pytest.raises(Invalid) as missing:
        await service.versions.publish(people.admin, created.guid)
    assert [e["loc"] for e in missing.value.errors] == [["scripts", "process"], ["scripts", "auth"]]

    # Without authentication no auth script is needed.
    open_one = await service.create_connector(
        people.owner, definition("open", auth={"method": "none"})
    )
    await service.put_script(people.owner, open_one.guid, ScriptKind.PROCESS, "", "DOMO.log(1);")
    assert (await service.versions.publish(people.admin, open_one.guid)).number == 1
    with pytest.raises(NotFound):
        await service.versions.get_version(people.owner, open_one.guid, 2)


async def test_concurrent_publishes_never_share_a_number(
    engine: AsyncEngine, people: People
) -> None:
    service = ConnectorService(engine)
    created = await drafted(service, people.owner)
    outcomes = await asyncio.gather(
        *(service.versions.publish(people.admin, created.guid) for _ in range(3)),
        return_exceptions=True,
    )
    numbers = sorted(o.number for o in outcomes if not isinstance(o, BaseException))
    assert all(isinstance(o, Conflict) for o in outcomes if isinstance(o, BaseException))
    assert numbers == list(range(1, len(numbers) + 1))
    listed, _ = await service.versions.list_versions(people.admin, created.guid, 50, None)
    assert sorted(v.number for v in listed) == numbers


async def test_a_run_uses_the_owners_draft_or_the_latest_version(
    engine: AsyncEngine, people: People
) -> None:
    service = ConnectorService(engine)
    created = await drafted(service, people.owner)
    draft = await service.versions.runnable(people.owner, created.guid, ScriptKind.PROCESS)
    assert (draft.version, draft.source) == (None, "DOMO.log('v1');")
    with pytest.raises(Conflict):
        await service.versions.runnable(people.colleague, created.guid, ScriptKind.PROCESS)

    await service.versions.publish(people.admin, created.guid)
    update_body = ConnectorUpdate.model_validate({"allowed_hosts": ["other.example.com"]})
    await service.update_connector(people.owner, created.guid, update_body)
    await service.put_script(people.owner, created.guid, ScriptKind.PROCESS, "", "DOMO.log('v2');")

    # The action is a customer one now: everyone's runs use version 1 ...
    for who in (people.owner, people.colleague):
        run = await service.versions.runnable(who, created.guid, ScriptKind.PROCESS)
        assert (run.version, run.source) == (1, "DOMO.log('v1');")
        assert run.connector.allowed_hosts == ("api.example.com",)
    # ... but the owner's personal runs, which use the draft.
    mine = await service.versions.runnable(
        people.owner, created.guid, ScriptKind.PROCESS, scope=Scope.PERSONAL
    )
    assert (mine.version, mine.source) == (None, "DOMO.log('v2');")
    assert mine.connector.allowed_hosts == ("other.example.com",)
    missing = await service.versions.runnable(
        people.colleague, created.guid, ScriptKind.DISCOVERY, "x"
    )
    assert missing.source is None

    # Another customer sees the action only once it is global.
    with pytest.raises(NotFound):
        await service.versions.runnable(people.outsider, created.guid, ScriptKind.PROCESS)
    await service.scopes.set_scope(people.platform, created.guid, Scope.GLOBAL, "for all")
    theirs = await service.versions.runnable(people.outsider, created.guid, ScriptKind.PROCESS)
    assert (theirs.version, theirs.source) == (1, "DOMO.log('v1');")
    listed, _ = await service.versions.list_versions(people.outsider, created.guid, 50, None)
    assert [v.number for v in listed] == [1]


async def test_scope_rules_and_their_audit(engine: AsyncEngine, people: People) -> None:
    service = ConnectorService(engine)
    scopes = service.scopes
    created = await drafted(service, people.owner)
    guid = created.guid
    with pytest.raises(ScopeNotAllowed):
        await scopes.set_scope(people.owner, guid, Scope.CUSTOMER, "mine")
    for asker in (people.owner, people.colleague, people.admin):
        with pytest.raises(ScopeNotAllowed):
            await scopes.set_scope(asker, guid, Scope.GLOBAL, "everyone")
    with pytest.raises(ActionNotFound):
        await scopes.set_scope(people.outsider, guid, Scope.CUSTOMER, "theirs")
    with pytest.raises(Conflict, match="publish"):
        await scopes.set_scope(people.admin, guid, Scope.CUSTOMER, "not yet")

    await service.versions.publish(people.admin, guid)
    back = await scopes.set_scope(people.admin, guid, Scope.PERSONAL, "undo")
    assert (back.scope, back.version) == (Scope.PERSONAL, 1)
    again = await scopes.set_scope(people.admin, guid, Scope.PERSONAL, "no change")
    assert again == back
    promoted = await scopes.set_scope(people.platform, guid, Scope.GLOBAL, "useful to all")
    assert promoted.scope is Scope.GLOBAL
    with pytest.raises(ScopeNotAllowed):
        await scopes.set_scope(people.admin, guid, Scope.CUSTOMER, "revoke")
    await scopes.set_scope(people.platform, guid, Scope.CUSTOMER, "revoked")

    history, _ = await scopes.scope_history(people.admin, guid, 50, None)
    assert [(c.from_scope, c.to_scope, c.reason, c.changed_by) for c in history] == [
        (Scope.GLOBAL, Scope.CUSTOMER, "revoked", people.platform.user_id),
        (Scope.PERSONAL, Scope.GLOBAL, "useful to all", people.platform.user_id),
        (Scope.CUSTOMER, Scope.PERSONAL, "undo", people.admin.user_id),
        (Scope.PERSONAL, Scope.CUSTOMER, "published as version 1", people.admin.user_id),
    ]
    assert (await scopes.scope_history(people.platform, guid, 50, None))[0] == history
    with pytest.raises(Forbidden):
        await scopes.scope_history(people.owner, guid, 50, None)
    with pytest.raises(ActionNotFound):
        await scopes.scope_history(people.outsider, guid, 50, None)


async def test_a_global_key_is_unique_among_global_connectors(
    engine: AsyncEngine, people: People
) -> None:
    service = ConnectorService(engine)
    ours = await drafted(service, people.owner)
    theirs = await drafted(service, people.outsider)
    for who, action in ((people.admin, ours), (people.outsider, theirs)):
        await service.versions.publish(who, action.guid)
    await service.scopes.set_scope(people.platform, ours.guid, Scope.GLOBAL, "first")
    with pytest.raises(Conflict, match="global connector with key 'crm'"):
        await service.scopes.set_scope(people.platform, theirs.guid, Scope.GLOBAL, "second")
    # The index holds even when a writer skips the check (two promotions that raced).
    with pytest.raises(IntegrityError):
        async with engine.begin() as connection:
            await connection.execute(
                update(connectors).where(connectors.c.guid == theirs.guid).values(scope="global")
            )


async def test_the_actions_a_caller_may_run(engine: AsyncEngine, people: People) -> None:
    service = ConnectorService(engine)
    action = await drafted(service, people.owner)
    await service.create_connector(people.owner, definition("pull", kind="connector"))

    async def runnable(who: Principal) -> list[tuple[str, Scope, int | None]]:
        items, _ = await service.scopes.runnable_actions(who, 50, None)
        return [(a.guid, a.scope, a.version) for a in items]

    assert await runnable(people.owner) == [(action.guid, Scope.PERSONAL, None)]
    assert await runnable(people.colleague) == []
    await service.versions.publish(people.admin, action.guid)
    for who in (people.owner, people.colleague, people.admin):
        assert await runnable(who) == [(action.guid, Scope.CUSTOMER, 1)]
    assert await runnable(people.outsider) == []
    await service.scopes.set_scope(people.platform, action.guid, Scope.GLOBAL, "all")
    assert await runnable(people.outsider) == [(action.guid, Scope.GLOBAL, 1)]
    await service.scopes.set_scope(people.platform, action.guid, Scope.PERSONAL, "mine again")
    assert await runnable(people.owner) == [(action.guid, Scope.PERSONAL, 1)]
    for who in (people.colleague, people.outsider):
        assert await runnable(who) == []
