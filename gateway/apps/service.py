"""Apps: upload a design, place instances, and map each user's accounts to its aliases."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from sqlalchemy import delete, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway.accounts.service import AccountService
from gateway.apps.bundle import Bundle, BundleLimits, read_bundle
from gateway.apps.errors import AliasNotMapped, BundleTooLarge
from gateway.apps.manifest import AppManifest
from gateway.apps.tables import app_account_mappings, app_aliases, app_files, app_instances, apps
from gateway.connectors.tables import connectors
from gateway.errors import Conflict, Forbidden, NotFound, ProviderMismatch, ValidationFailed
from gateway.identity.principal import Principal
from gateway.store.cache import Cache
from gateway.store.generations import Area, Generations
from gateway.store.ids import new_id
from gateway.store.paging import paginate
from gateway.store.tables import utcnow

# Inflating a zip at the caps takes well under a second; this only stops a pathological one.
BUNDLE_TIMEOUT_S: Final = 30.0
# The action endpoint's alias resolution (decision 0019), keyed by customer, user, instance
# and alias; mapping changes and deletions drop it at once here, elsewhere at the next poll.
MAPPINGS_MAX: Final = 10_000
MAPPINGS_MAX_AGE_S: Final = 60.0

MappingKey = tuple[str, str, str, str]
"""(customer id, user id, instance id, alias)."""


@dataclass(frozen=True, slots=True)
class App:
    """An uploaded app design."""

    id: str
    owner_id: str
    name: str
    version: str
    manifest: dict[str, Any]
    file_count: int
    size: int
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Instance:
    """A placed copy of an app."""

    id: str
    app_id: str
    name: str
    created_by: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class AccountMapping:
    """One user's account for one alias of one instance."""

    alias: str
    provider_key: str
    account_id: str
    updated_at: datetime


def _app(row: Any) -> App:
    return App(
        row.id,
        row.owner_id,
        row.name,
        row.version,
        dict(row.manifest),
        row.file_count,
        row.size,
        row.created_at,
    )


def _instance(row: Any) -> Instance:
    return Instance(row.id, row.app_id, row.name, row.created_by, row.created_at)


class AppService:
    """App designs, their instances and the per-user account mappings of each instance.

    Args:
        engine: the metadata store.
        accounts: the account service (mappings name usable accounts).
        limits: the caps on uploaded bundles.
        generations: the process's cache generations (none: nothing cached, writes bump).
    """

    def __init__(
        self,
        engine: AsyncEngine,
        accounts: AccountService,
        limits: BundleLimits | None = None,
        generations: Generations | None = None,
    ) -> None:
        self._engine = engine
        self._accounts = accounts
        self.limits = limits or BundleLimits()
        self._generations = generations = generations or Generations(engine)
        self._mapped: Cache[MappingKey, str] = generations.cache(
            Area.APPS, "account_mappings", max_size=MAPPINGS_MAX, max_age_s=MAPPINGS_MAX_AGE_S
        )

    async def read_bundle(self, data: bytes) -> Bundle:
        """Check and inflate an app zip off the event loop (see `gateway.apps.bundle`).

        Raises:
            BundleRefused, BundleTooLarge: as `read_bundle` says; BundleTooLarge also when
                inflating takes longer than `BUNDLE_TIMEOUT_S`.
        """
        try:
            return await asyncio.wait_for(
                asyncio.to_thread(read_bundle, data, self.limits), BUNDLE_TIMEOUT_S
            )
        except TimeoutError:
            raise BundleTooLarge("the archive takes too long to inflate") from None

    async def create(
        self, principal: Principal, manifest: AppManifest, files: Mapping[str, bytes]
    ) -> App:
        """Store an app with its files, in one transaction (a refusal stores nothing).

        Raises:
            ValidationFailed: an `accountMapping` key names no connector the customer sees.
        """
        async with self._engine.connect() as connection:
            await _check_provider_keys(connection, principal, manifest)
        app_id = new_id()
        document = manifest.document()
        async with self._engine.begin() as connection:
            await connection.execute(
                insert(apps).values(
                    id=app_id,
                    customer_id=principal.customer_id,
                    owner_id=principal.user_id,
                    name=manifest.name,
                    version=manifest.version,
                    manifest=document,
                    file_count=len(files),
                    size=sum(len(content) for content in files.values()),
                    created_at=utcnow(),
                )
            )
            owned = {"customer_id": principal.customer_id, "app_id": app_id}
            if manifest.account_mapping:
                await connection.execute(
                    insert(app_aliases),
                    [
                        {**owned, "alias": entry.alias, "provider_key": entry.provider_key}
                        for entry in manifest.account_mapping
                    ],
                )
            if files:
                await connection.execute(
                    insert(app_files),
                    [
                        {**owned, "path": path, "size": len(content), "content": content}
                        for path, content in files.items()
                    ],
                )
        return await self.get(principal, app_id)

    async def get(self, principal: Principal, app_id: str) -> App:
        """One of the caller's customer's apps.

        Raises:
            NotFound: no such app in the caller's customer.
        """
        async with self._engine.connect() as connection:
            row = (
                await connection.execute(
                    select(apps).where(
                        apps.c.id == app_id, apps.c.customer_id == principal.customer_id
                    )
                )
            ).first()
        if row is None:
            raise NotFound("no such app")
        return _app(row)

    async def list_apps(
        self, principal: Principal, limit: int, cursor: str | None
    ) -> tuple[list[App], str | None]:
        """The caller's customer's apps, oldest first."""
        query = select(apps).where(apps.c.customer_id == principal.customer_id)
        async with self._engine.connect() as connection:
            rows, next_cursor = await paginate(connection, query, apps.c.id, limit, cursor)
        return [_app(row) for row in rows], next_cursor

    async def delete(self, principal: Principal, app_id: str) -> None:
        """Delete an app with its files, instances and mappings (its uploader or an admin).

        Raises:
            NotFound: no such app in the caller's customer.
            Forbidden: the caller neither uploaded it nor is an admin of its customer.
        """
        app = await self.get(principal, app_id)
        if app.owner_id != principal.user_id and not principal.is_admin_of(principal.customer_id):
            raise Forbidden("only the app's uploader and its customer's admins delete it")
        async with self._generations.begin(Area.APPS) as connection:
            await connection.execute(
                delete(apps).where(apps.c.id == app_id, apps.c.customer_id == principal.customer_id)
            )

    async def create_instance(
        self, principal: Principal, app_id: str, name: str | None
    ) -> Instance:
        """Place an instance of the app (named after the app unless `name` is given).

        Raises:
            NotFound: no such app in the caller's customer.
        """
        app = await self.get(principal, app_id)
        instance_id = new_id()
        try:
            async with self._engine.begin() as connection:
                await connection.execute(
                    insert(app_instances).values(
                        id=instance_id,
                        customer_id=principal.customer_id,
                        app_id=app.id,
                        name=name or app.name,
                        created_by=principal.user_id,
                        created_at=utcnow(),
                    )
                )
        except IntegrityError:  # the app was deleted meanwhile
            raise NotFound("no such app") from None
        return await self.instance(principal, app_id, instance_id)

    async def instance(self, principal: Principal, app_id: str, instance_id: str) -> Instance:
        """One instance of one of the caller's customer's apps.

        Raises:
            NotFound: no such instance of this app in the caller's customer.
        """
        instance = await self.find_instance(principal, instance_id)
        if instance.app_id != app_id:
            raise NotFound("no such app instance")
        return instance

    async def find_instance(self, principal: Principal, instance_id: str) -> Instance:
        """One of the caller's customer's instances, of whichever app.

        Raises:
            NotFound: no such instance in the caller's customer.
        """
        async with self._engine.connect() as connection:
            row = (
                await connection.execute(
                    select(app_instances).where(
                        app_instances.c.id == instance_id,
                        app_instances.c.customer_id == principal.customer_id,
                    )
                )
            ).first()
        if row is None:
            raise NotFound("no such app instance")
        return _instance(row)

    async def file(self, customer_id: str, app_id: str, path: str) -> bytes | None:
        """The content of one of an app's files (a checked relative path), or None."""
        async with self._engine.connect() as connection:
            content = (
                await connection.execute(
                    select(app_files.c.content).where(
                        app_files.c.customer_id == customer_id,
                        app_files.c.app_id == app_id,
                        app_files.c.path == path,
                    )
                )
            ).scalar()
        return None if content is None else bytes(content)

    async def instances(
        self, principal: Principal, app_id: str, limit: int, cursor: str | None
    ) -> tuple[list[Instance], str | None]:
        """The app's instances, oldest first.

        Raises:
            NotFound: no such app in the caller's customer.
        """
        await self.get(principal, app_id)
        query = select(app_instances).where(
            app_instances.c.app_id == app_id,
            app_instances.c.customer_id == principal.customer_id,
        )
        async with self._engine.connect() as connection:
            rows, next_cursor = await paginate(connection, query, app_instances.c.id, limit, cursor)
        return [_instance(row) for row in rows], next_cursor

    async def map_account(
        self, principal: Principal, app_id: str, instance_id: str, alias: str, account_id: str
    ) -> AccountMapping:
        """Set the caller's account for `alias` in the instance (replacing its previous one).

        Raises:
            NotFound: no such instance, an alias the app does not declare, or an account
                of another customer.
            AccountNotAccessible: the account is neither the caller's nor shared with it.
            ProviderMismatch: the account is of another data provider than the alias.
            Conflict: the instance or the account went away meanwhile.
        """
        await self.instance(principal, app_id, instance_id)
        provider_key = await self._provider_key(app_id, alias)
        account = await self._accounts.usable(principal, account_id)
        if account.connector_key != provider_key:
            raise ProviderMismatch(
                f"alias {alias!r} needs an account of {provider_key!r}, "
                f"not of {account.connector_key!r}"
            )
        key = {"instance_id": instance_id, "user_id": principal.user_id, "alias": alias}
        now = utcnow()
        try:
            async with self._generations.begin(Area.APPS) as connection:
                changed = await connection.execute(
                    update(app_account_mappings)
                    .where(*(app_account_mappings.c[name] == value for name, value in key.items()))
                    .values(account_id=account_id, updated_at=now)
                )
                if changed.rowcount == 0:
                    await connection.execute(
                        insert(app_account_mappings).values(
                            **key,
                            customer_id=principal.customer_id,
                            app_id=app_id,
                            account_id=account_id,
                            updated_at=now,
                        )
                    )
        except IntegrityError:
            raise Conflict("the mapping changed meanwhile; try again") from None
        return AccountMapping(alias, provider_key, account_id, now)

    async def mappings(
        self,
        principal: Principal,
        app_id: str,
        instance_id: str,
        limit: int,
        cursor: str | None,
    ) -> tuple[list[AccountMapping], str | None]:
        """The caller's mappings in the instance, by alias (others' mappings stay private).

        Raises:
            NotFound: no such instance of this app in the caller's customer.
        """
        await self.instance(principal, app_id, instance_id)
        query = (
            select(
                app_account_mappings.c.alias,
                app_aliases.c.provider_key,
                app_account_mappings.c.account_id,
                app_account_mappings.c.updated_at,
            )
            .join(
                app_aliases,
                (app_aliases.c.app_id == app_account_mappings.c.app_id)
                & (app_aliases.c.alias == app_account_mappings.c.alias),
            )
            .where(
                app_account_mappings.c.instance_id == instance_id,
                app_account_mappings.c.user_id == principal.user_id,
                app_account_mappings.c.customer_id == principal.customer_id,
            )
        )
        async with self._engine.connect() as connection:
            rows, next_cursor = await paginate(
                connection, query, app_account_mappings.c.alias, limit, cursor
            )
        return [AccountMapping(*row) for row in rows], next_cursor

    async def mapped_account(self, principal: Principal, instance_id: str, alias: str) -> str:
        """The account id the calling user mapped for `alias` in the instance.

        The action endpoint resolves `accountAlias` with this, then applies the account's
        own rules (still the caller's or shared, its provider, its status) as for
        `account=<id>`: a mapping outlives neither its account nor its alias, but a share
        may be withdrawn after it was made.

        Raises:
            NotFound: no such instance in the caller's customer.
            AliasNotMapped: the caller has mapped no account to `alias` there (or the app
                declares no such alias).
        """
        key = (principal.customer_id, principal.user_id, instance_id, alias)
        return await self._mapped.get_or_load(key, lambda: self._mapping(*key))

    async def _mapping(self, customer_id: str, user_id: str, instance_id: str, alias: str) -> str:
        async with self._engine.connect() as connection:
            known = (
                await connection.execute(
                    select(app_instances.c.id).where(
                        app_instances.c.id == instance_id,
                        app_instances.c.customer_id == customer_id,
                    )
                )
            ).first()
            if known is None:
                raise NotFound("no such app instance")
            account_id = (
                await connection.execute(
                    select(app_account_mappings.c.account_id).where(
                        app_account_mappings.c.instance_id == instance_id,
                        app_account_mappings.c.user_id == user_id,
                        app_account_mappings.c.alias == alias,
                    )
                )
            ).scalar()
        if account_id is None:
            raise AliasNotMapped(f"you have mapped no account to alias {alias!r} in this instance")
        return str(account_id)

    async def _provider_key(self, app_id: str, alias: str) -> str:
        async with self._engine.connect() as connection:
            key = (
                await connection.execute(
                    select(app_aliases.c.provider_key).where(
                        app_aliases.c.app_id == app_id, app_aliases.c.alias == alias
                    )
                )
            ).scalar()
        if key is None:
            raise NotFound(f"the app declares no account alias {alias!r}")
        return str(key)


async def _check_provider_keys(
    connection: AsyncConnection, principal: Principal, manifest: AppManifest
) -> None:
    """Every `accountMapping` key must be the customer's own connector's or a global one's.

    Raises:
        ValidationFailed: with one `errors` entry per unknown key, naming its place.
    """
    wanted = {entry.provider_key for entry in manifest.account_mapping}
    if not wanted:
        return
    visible = set(
        (
            await connection.execute(
                select(connectors.c.key).where(
                    connectors.c.key.in_(wanted),
                    or_(
                        connectors.c.customer_id == principal.customer_id,
                        connectors.c.scope == "global",
                    ),
                )
            )
        ).scalars()
    )
    errors: Sequence[dict[str, object]] = [
        {
            "loc": ["accountMapping", index, "dataProviderKey"],
            "msg": f"no connector with key {entry.provider_key!r} is visible to your customer",
            "type": "unknown_provider",
        }
        for index, entry in enumerate(manifest.account_mapping)
        if entry.provider_key not in visible
    ]
    if errors:
        raise ValidationFailed("the manifest names unknown data providers", list(errors))
