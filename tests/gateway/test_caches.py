"""The caches and their invalidation (decision 0019), on SQLite and PostgreSQL.

Two "replicas" share one database, each with services and generations of its own. Every
write path is made on replica A; A answers the new fact at once (its own write dropped its
caches), replica B still answers from its cache, and after one poll B answers the new fact
too. Without the bump in the write's transaction B's poll would see nothing and the last
assertion fails; without the local drop A's first one does.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.accounts.service import AccountService, Provider
from gateway.accounts.vault import SecretVault
from gateway.apps.manifest import AppManifest
from gateway.apps.service import AppService
from gateway.apps.sessions import AppSessions
from gateway.connectors.models import ConnectorUpdate, Scope, ScriptKind
from gateway.connectors.service import ConnectorService
from gateway.crypto import KeyRing, new_key_entry
from gateway.errors import GatewayError
from gateway.identity.principal import Principal, Role
from gateway.identity.service import IdentityService, User
from gateway.oauth.refresh import RefreshCoordinator
from gateway.oauth.tokens import InvalidGrant, OAuthClientConfig, TokenSet
from gateway.store.cache import Cache
from gateway.store.generations import Area, Generations
from gateway.store.tables import api_tokens, cache_generations, utcnow
from tests.gateway.connectors.conftest import definition

KEY = new_key_entry()
CRM = Provider("crm", "apikey")
OAUTH = Provider("crm", "oauth2")
CONFIG = OAuthClientConfig(token_url="https://auth.example.com/token", client_id="gateway")


class ManualClock:
    """Monotonic seconds that move only when a test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def accept(values: dict[str, str]) -> tuple[bool, str | None]:
    return True, None


@dataclass
class FakeEndpoint:
    """A token endpoint: hands out `next_token`, or refuses the grant."""

    next_token: str = "access-2"
    refuse: bool = False
    calls: int = 0

    async def refresh(self, config: OAuthClientConfig, refresh_token: str) -> TokenSet:
        self.calls += 1
        if self.refuse:
            raise InvalidGrant("invalid_grant")
        return TokenSet(self.next_token, refresh_token, utcnow() + timedelta(hours=1))


@dataclass
class Replica:
    """One process's services over the shared database."""

    generations: Generations
    identity: IdentityService
    accounts: AccountService
    apps: AppService
    connectors: ConnectorService
    coordinator: RefreshCoordinator
    sessions: AppSessions
    endpoint: FakeEndpoint = field(default_factory=FakeEndpoint)


async def replica(engine: AsyncEngine, clock: ManualClock) -> Replica:
    generations = Generations(engine, poll_s=3600, clock=clock)
    vault = SecretVault(KeyRing([KEY]))
    accounts = AccountService(engine, vault, generations)
    endpoint = FakeEndpoint()
    apps = AppService(engine, accounts, generations=generations)
    made = Replica(
        generations,
        IdentityService(engine, generations),
        accounts,
        apps,
        ConnectorService(engine, sealer=vault, generations=generations),
        RefreshCoordinator(engine, vault, endpoint, generations=generations),
        AppSessions(engine, apps, ttl=timedelta(hours=1), generations=generations),
        endpoint,
    )
    await generations.poll()  # current: the caches serve from now on
    return made


@dataclass
class World:
    """Replicas A and B, acme's people, a connector, accounts and an app instance."""

    a: Replica
    b: Replica
    owner_user: User
    admin_user: User
    owner: Principal
    colleague: Principal
    admin: Principal
    token: str
    token_id: str
    guid: str
    account_id: str
    other_account_id: str
    oauth_account_id: str
    app_id: str
    instance_id: str
    signed_in: Principal
    """The owner signed in with `token` (app sessions die with their token)."""
    session: str
    """The owner's session on the instance."""


def principal_of(user: User) -> Principal:
    return Principal(user.id, user.customer_id, user.role)


@pytest.fixture
async def world(engine: AsyncEngine) -> World:
    clock = ManualClock()
    a, b = await replica(engine, clock), await replica(engine, clock)
    acme = await a.identity.create_customer("acme")
    owner_user = await a.identity.create_user(acme.id, "olga@acme.test", "Olga", Role.MEMBER)
    colleague = await a.identity.create_user(acme.id, "carl@acme.test", "Carl", Role.MEMBER)
    admin = await a.identity.create_user(acme.id, "ada@acme.test", "Ada", Role.ADMIN)
    info, token = await a.identity.issue_token(owner_user, "cli")
    owner = principal_of(owner_user)
    connector = await a.connectors.create_connector(owner, definition())
    for kind in (ScriptKind.AUTH, ScriptKind.PROCESS):
        await a.connectors.put_script(owner, connector.guid, kind, "", "return 'v1';")
    account = await a.accounts.create(owner, CRM, "main", {"apikey": "key-1"}, accept)
    other = await a.accounts.create(owner, CRM, "spare", {"apikey": "key-2"}, accept)
    grant = TokenSet("access-1", "refresh-1", utcnow() + timedelta(hours=1))
    oauth, _ = await a.accounts.authorise_oauth(owner, OAUTH, grant, name="oauth")
    app = await a.apps.create(
        owner,
        AppManifest.model_validate(
            {
                "name": "Board",
                "version": "1.0.0",
                "accountMapping": [{"alias": "sales", "dataProviderKey": "crm"}],
            }
        ),
        {},
    )
    instance = await a.apps.create_instance(owner, app.id, None)
    await a.apps.map_account(owner, app.id, instance.id, "sales", account.id)
    signed_in = Principal(owner.user_id, owner.customer_id, owner.role, token_id=info.id)
    opened = await a.sessions.exchange(instance.id, await a.sessions.open(signed_in, instance.id))
    assert opened is not None
    return World(
        a,
        b,
        owner_user,
        admin,
        owner,
        principal_of(colleague),
        principal_of(admin),
        token,
        info.id,
        connector.guid,
        account.id,
        other.id,
        oauth.id,
        app.id,
        instance.id,
        signed_in,
        opened.secret,
    )


Probe = Callable[[Replica, World], Awaitable[Any]]
Write = Callable[[Replica, World], Awaitable[object]]


async def outcome(probe: Probe, side: Replica, world: World) -> Any:
    """What the probe answers, or the problem code it raises."""
    try:
        return await probe(side, world)
    except GatewayError as exc:
        return exc.code


# --- probes: what the warm path reads ------------------------------------------------


async def principal(side: Replica, world: World) -> Any:
    found = await side.identity.authenticate(world.token)
    return None if found is None else found.role


async def owner_runnable(side: Replica, world: World) -> Any:
    ran = await side.connectors.versions.runnable(world.owner, world.guid, ScriptKind.PROCESS)
    return ran.connector.name, ran.source, ran.version


async def colleague_runnable(side: Replica, world: World) -> Any:
    ran = await side.connectors.versions.runnable(world.colleague, world.guid, ScriptKind.PROCESS)
    return ran.source, ran.version


async def mapping(side: Replica, world: World) -> Any:
    return await side.apps.mapped_account(world.owner, world.instance_id, "sales")


async def app_session(side: Replica, world: World) -> Any:
    found = await side.sessions.resolve(world.instance_id, world.session)
    return None if found is None else (found.principal.role, found.app_id)


async def owner_fields(side: Replica, world: World) -> Any:
    account = await side.accounts.usable(world.owner, world.account_id)
    fields, _ = await side.accounts.fields_for_run(world.owner, CRM, world.account_id)
    return account.name, fields


async def colleague_fields(side: Replica, world: World) -> Any:
    fields, _ = await side.accounts.fields_for_run(world.colleague, CRM, world.account_id)
    return fields


async def oauth_token(side: Replica, world: World) -> Any:
    return await side.coordinator.access_token(
        world.owner.customer_id, world.oauth_account_id, CONFIG
    )


async def oauth_fields(side: Replica, world: World) -> Any:
    fields, _ = await side.accounts.fields_for_run(world.owner, OAUTH, world.oauth_account_id)
    return fields["accesstoken"]


# --- writes: every path that changes a cached fact -----------------------------------


async def share(side: Replica, world: World) -> None:
    await side.accounts.share(world.owner, world.account_id, world.colleague.user_id)


async def publish(side: Replica, world: World) -> None:
    await side.connectors.versions.publish(world.admin, world.guid)


async def publish_then_upload(side: Replica, world: World) -> None:
    await publish(side, world)
    await side.connectors.put_script(
        world.owner, world.guid, ScriptKind.PROCESS, "", "return 'v2';"
    )


async def reauthorise(side: Replica, world: World) -> None:
    grant = TokenSet("access-9", "refresh-9", utcnow() + timedelta(hours=1))
    await side.accounts.authorise_oauth(
        world.owner, OAUTH, grant, name=None, account_id=world.oauth_account_id
    )


async def refresh(side: Replica, world: World) -> None:
    await side.coordinator.refresh_now(world.owner.customer_id, world.oauth_account_id, CONFIG)


async def refused_refresh(side: Replica, world: World) -> None:
    side.endpoint.refuse = True
    with pytest.raises(GatewayError):
        await refresh(side, world)


@dataclass(frozen=True)
class Path:
    """A write path: what to set up first, what it changes, what shows the change."""

    probe: Probe
    write: Write
    before: Write | None = None


def _update(**changes: object) -> ConnectorUpdate:
    return ConnectorUpdate.model_validate(changes, strict=False)


PATHS: dict[str, Path] = {
    "token revoke": Path(principal, lambda s, w: s.identity.revoke_token(w.owner_user, w.token_id)),
    "user role change": Path(
        principal, lambda s, w: s.identity.update_user(w.owner_user, role=Role.ADMIN)
    ),
    "user delete": Path(
        principal,
        # Its connector goes to the admin, its accounts and mappings go with it.
        lambda s, w: s.identity.delete_user(w.owner_user, connectors_to=w.admin_user),
        before=lambda s, w: s.apps.delete(w.owner, w.app_id),  # apps keep their uploader
    ),
    "connector patch": Path(
        owner_runnable,
        lambda s, w: s.connectors.update_connector(w.owner, w.guid, _update(name="CRM 2")),
    ),
    "connector delete": Path(
        owner_runnable, lambda s, w: s.connectors.delete_connector(w.owner, w.guid)
    ),
    "script upload": Path(
        owner_runnable,
        lambda s, w: s.connectors.put_script(
            w.owner, w.guid, ScriptKind.PROCESS, "", "return 'v2';"
        ),
    ),
    "publish": Path(colleague_runnable, publish, before=publish_then_upload),
    "scope change": Path(
        owner_runnable,
        lambda s, w: s.connectors.scopes.set_scope(w.admin, w.guid, Scope.PERSONAL, "back"),
        before=publish_then_upload,
    ),
    "app session revoke": Path(
        app_session,
        lambda s, w: s.sessions.revoke(w.signed_in, w.app_id, w.instance_id, None),
    ),
    "token revoke (app session)": Path(
        app_session, lambda s, w: s.identity.revoke_token(w.owner_user, w.token_id)
    ),
    "user role change (app session)": Path(
        app_session, lambda s, w: s.identity.update_user(w.owner_user, role=Role.ADMIN)
    ),
    "app delete (app session)": Path(app_session, lambda s, w: s.apps.delete(w.owner, w.app_id)),
    "mapping set": Path(
        mapping,
        lambda s, w: s.apps.map_account(
            w.owner, w.app_id, w.instance_id, "sales", w.other_account_id
        ),
    ),
    "app delete": Path(mapping, lambda s, w: s.apps.delete(w.owner, w.app_id)),
    "account delete (mapping too)": Path(
        mapping, lambda s, w: s.accounts.delete(w.owner, w.account_id)
    ),
    "account rename": Path(
        owner_fields, lambda s, w: s.accounts.rename(w.owner, w.account_id, "renamed")
    ),
    "account delete": Path(owner_fields, lambda s, w: s.accounts.delete(w.owner, w.account_id)),
    "credentials replaced": Path(
        owner_fields,
        lambda s, w: s.accounts.replace_credentials(
            w.owner, w.account_id, CRM, {"apikey": "key-3"}, accept
        ),
    ),
    "share": Path(colleague_fields, share),
    "unshare": Path(
        colleague_fields,
        lambda s, w: s.accounts.unshare(w.owner, w.account_id, w.colleague.user_id),
        before=share,
    ),
    "oauth re-authorisation": Path(oauth_fields, reauthorise),
    "oauth refresh": Path(oauth_token, refresh),
    "oauth refresh (secrets)": Path(oauth_fields, refresh),
    "oauth needs_reauth": Path(oauth_token, refused_refresh),
}


@pytest.mark.parametrize("name", list(PATHS))
async def test_a_write_is_seen_at_once_here_and_after_one_poll_elsewhere(
    world: World, name: str
) -> None:
    path = PATHS[name]
    if path.before is not None:
        await path.before(world.a, world)
    await world.b.generations.poll()  # B has seen the setup
    old = await outcome(path.probe, world.b, world)
    assert await outcome(path.probe, world.a, world) == old

    await path.write(world.a, world)

    new = await outcome(path.probe, world.a, world)
    assert new != old, "the write changed nothing the probe shows"
    assert await outcome(path.probe, world.b, world) == old  # B serves its cache ...
    await world.b.generations.poll()
    assert await outcome(path.probe, world.b, world) == new  # ... until its next poll


async def test_a_cached_app_session_expires_on_time(world: World) -> None:
    assert await app_session(world.a, world) is not None  # cached now
    later = utcnow() + timedelta(hours=2)  # past the one-hour session
    world.a.sessions.clock = lambda: later
    assert await app_session(world.a, world) is None


async def test_a_poll_drops_only_the_areas_that_moved(world: World) -> None:
    assert await principal(world.b, world) is Role.MEMBER
    await owner_fields(world.b, world)
    await world.a.accounts.rename(world.owner, world.account_id, "renamed")
    await world.b.generations.poll()
    hits = world.b.identity._principals.hits
    assert await principal(world.b, world) is Role.MEMBER
    assert world.b.identity._principals.hits == hits + 1
    assert (await owner_fields(world.b, world))[0] == "renamed"


async def test_a_never_polled_process_serves_no_cache_but_bumps(
    world: World, engine: AsyncEngine
) -> None:
    cli = IdentityService(engine)  # as `gateway admin` builds it
    assert await cli.authenticate(world.token) is not None
    await cli.revoke_token(world.owner_user, world.token_id)
    assert await cli.authenticate(world.token) is None
    async with engine.connect() as connection:
        rows = {
            row.area: row.generation for row in await connection.execute(select(cache_generations))
        }
    assert rows[Area.IDENTITY.value] >= 1


async def test_stalled_polls_stop_the_caches(engine: AsyncEngine, world: World) -> None:
    clock = ManualClock()
    generations = Generations(engine, poll_s=1.0, clock=clock)
    identity = IdentityService(engine, generations)
    await generations.poll()
    assert await identity.authenticate(world.token) is not None
    await world.a.identity.revoke_token(world.owner_user, world.token_id)
    clock.now += 4.9  # within 5 polls: still served from the cache
    assert await identity.authenticate(world.token) is not None
    clock.now += 0.2  # polls stalled for longer: the store answers
    assert await identity.authenticate(world.token) is None


async def test_token_uses_on_cached_principals_are_written_by_the_poll(
    world: World, engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    b = world.b
    await b.identity.authenticate(world.token)  # a miss: recorded in its own transaction
    first = await _last_used(engine)
    later = first + timedelta(minutes=2)
    monkeypatch.setattr("gateway.identity.service.utcnow", lambda: later)
    await b.identity.authenticate(world.token)  # a hit two minutes on: noted, not written
    assert await _last_used(engine) == first
    await b.generations.poll()
    assert await _last_used(engine) == later


async def _last_used(engine: AsyncEngine) -> datetime:
    async with engine.connect() as connection:
        used = (await connection.execute(select(api_tokens.c.last_used_at))).scalar_one()
    assert isinstance(used, datetime)
    return used


async def test_cache_keys_hold_the_tenant(world: World, engine: AsyncEngine) -> None:
    globex = await world.a.identity.create_customer("globex")
    gus = await world.a.identity.create_user(globex.id, "gus@globex.test", "Gus", Role.ADMIN)
    stranger = Principal(gus.id, globex.id, Role.ADMIN)
    await owner_fields(world.a, world)  # acme's account, cached
    await mapping(world.a, world)
    await owner_runnable(world.a, world)
    with pytest.raises(GatewayError) as refused:
        await world.a.accounts.fields_for_run(stranger, CRM, world.account_id)
    assert refused.value.code == "not_found"
    with pytest.raises(GatewayError) as refused:
        await world.a.apps.mapped_account(stranger, world.instance_id, "sales")
    assert refused.value.code == "not_found"
    with pytest.raises(GatewayError) as refused:
        await world.a.connectors.versions.runnable(stranger, world.guid, ScriptKind.PROCESS)
    assert refused.value.code == "not_found"


async def test_cached_secrets_are_served_only_to_their_users(world: World) -> None:
    await owner_fields(world.a, world)  # the owner's run opened them
    for other in (world.colleague, world.admin):  # not shared; an admin does not borrow
        with pytest.raises(GatewayError) as refused:
            await world.a.accounts.fields_for_run(other, CRM, world.account_id)
        assert refused.value.code == "account_not_accessible"


# --- the cache itself ----------------------------------------------------------------


def _cache(clock: ManualClock, fresh: list[bool] | None = None, **bounds: Any) -> Cache[str, int]:
    state = fresh if fresh is not None else [True]
    return Cache(
        "test",
        max_size=bounds.get("max_size", 3),
        max_age_s=bounds.get("max_age_s", 10.0),
        fresh=lambda: state[0],
        clock=clock,
    )


async def _value(value: int) -> int:
    return value


async def test_the_least_recently_used_entry_goes_first() -> None:
    cache = _cache(ManualClock(), max_size=2)
    await cache.get_or_load("a", lambda: _value(1))
    await cache.get_or_load("b", lambda: _value(2))
    await cache.get_or_load("a", lambda: _value(0))  # a is used: b is the oldest now
    await cache.get_or_load("c", lambda: _value(3))
    assert len(cache) == 2
    assert cache.peek("a") == (1,)
    assert cache.peek("b") is None
    assert cache.peek("c") == (3,)


async def test_an_entry_is_served_for_max_age_at_most() -> None:
    clock = ManualClock()
    cache = _cache(clock, max_age_s=10.0)
    await cache.get_or_load("a", lambda: _value(1))
    clock.now += 10.0
    assert cache.peek("a") == (1,)
    clock.now += 0.5
    assert cache.peek("a") is None
    assert await cache.get_or_load("a", lambda: _value(2)) == 2


async def test_a_fill_that_began_before_a_drop_is_not_kept() -> None:
    cache = _cache(ManualClock())

    async def load_during_drop() -> int:
        cache.clear()  # a write committed while the store was read
        return 1

    assert await cache.get_or_load("a", load_during_drop) == 1
    assert cache.peek("a") is None
    assert await cache.get_or_load("a", lambda: _value(2)) == 2
    assert cache.peek("a") == (2,)


async def test_a_cache_that_is_not_fresh_neither_serves_nor_keeps() -> None:
    fresh = [False]
    cache = _cache(ManualClock(), fresh)
    await cache.get_or_load("a", lambda: _value(1))
    fresh[0] = True
    assert cache.peek("a") is None
    await cache.get_or_load("a", lambda: _value(2))
    fresh[0] = False
    assert cache.peek("a") is None


async def test_a_failed_load_is_not_cached() -> None:
    cache = _cache(ManualClock())

    async def fail() -> int:
        raise LookupError("gone")

    with pytest.raises(LookupError):
        await cache.get_or_load("a", fail)
    assert len(cache) == 0
    assert cache.misses == 1
