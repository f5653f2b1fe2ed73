"""Connector definitions, their scripts and icons in the metadata store (SPEC 4.2)."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Mapping
from typing import Any, Final, Protocol

from sqlalchemy import Table, delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway.connectors.errors import Invalid, field_error
from gateway.connectors.icons import InvalidPng, inspect_png
from gateway.connectors.models import (
    ICON_SIZES,
    AuthConfig,
    ConnectorCreate,
    ConnectorStatus,
    ConnectorUpdate,
    IconSlot,
    OAuth2Auth,
    ParameterType,
    Scope,
    ScriptKind,
)
from gateway.connectors.records import (
    Connector,
    Icon,
    IconInfo,
    Script,
    ScriptInfo,
    connector_from_row,
    definition_values,
    icon_info_from_row,
    icons_of,
    script_info_from_row,
    scripts_of,
)
from gateway.connectors.scopes import ScopeService
from gateway.connectors.tables import connector_icons, connector_scripts, connectors
from gateway.connectors.versions import VersionService
from gateway.errors import Conflict, Forbidden, NotFound
from gateway.identity.principal import Principal
from gateway.store.generations import Area, Generations
from gateway.store.ids import new_id
from gateway.store.paging import paginate
from gateway.store.tables import utcnow
from runtime.model import JsonValue

MAX_SCRIPT_BYTES: Final = 1024 * 1024


class AccountSource(Protocol):
    """Where a run's account comes from; the accounts service implements it."""

    async def metadata_for_run(
        self, principal: Principal, connector: Connector, account_id: str
    ) -> tuple[dict[str, JsonValue], tuple[str, ...]]:
        """The account's fields for `metadata.account` and its secret values (to redact).

        Raises:
            gateway.errors.GatewayError: the account is unknown (`NotFound`), not the caller's
                to use, of another provider, or needs re-authorisation.
        """


class ClientSecretSealer(Protocol):
    """Encrypts a connector's OAuth client secret; the accounts' encryption implements it."""

    def seal_client_secret(
        self, customer_id: str, connector_id: str, secret: str
    ) -> tuple[str, bytes]:
        """Return `(key_id, ciphertext)`, the ciphertext bound to customer and connector."""


def may_change(principal: Principal, connector: Connector) -> bool:
    """The owner and its customer's admins change and delete a connector."""
    return principal.user_id == connector.owner_id or principal.is_admin_of(connector.customer_id)


def sha256_hex(data: bytes) -> str:
    """The SHA-256 of `data` in lower-case hex."""
    return hashlib.sha256(data).hexdigest()


class ConnectorService:
    """Creates, reads, changes and deletes connectors, their scripts and icons.

    Every query is filtered by the caller's customer: another customer's connector is
    `NotFound`. Users of the customer read its connectors; owner and admins change them.
    `versions` publishes and reads their versions, `scopes` the scopes of actions.
    """

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        sealer: ClientSecretSealer | None = None,
        generations: Generations | None = None,
    ) -> None:
        self._engine = engine
        self._sealer = sealer
        # Every write here changes what runs use (definition, scripts, owner, client secret).
        self._generations = generations = generations or Generations(engine)
        self.versions: Final = VersionService(engine, generations)
        self.scopes: Final = ScopeService(engine, generations)

    # --- definitions ---------------------------------------------------------------------
    async def create_connector(self, principal: Principal, body: ConnectorCreate) -> Connector:
        """Create a draft connector owned by the caller (personal scope).

        Raises:
            Conflict: the customer has a connector with this key already.
        """
        connector_id, now = new_id(), utcnow()
        values: dict[str, Any] = {
            "id": connector_id,
            "guid": str(uuid.uuid4()),
            "customer_id": principal.customer_id,
            "owner_id": principal.user_id,
            "scope": Scope.PERSONAL.value,
            "status": ConnectorStatus.DRAFT.value,
            "created_at": now,
            **definition_values(body, set(type(body).model_fields)),
            **self._secret_values(principal.customer_id, connector_id, body.auth),
            "updated_at": now,
        }
        try:
            async with self._engine.begin() as connection:
                await connection.execute(insert(connectors).values(**values))
        except IntegrityError:
            raise Conflict(f"a connector with key {body.key!r} exists already") from None
        return await self.get_connector(principal, values["guid"])

    async def get_connector(self, principal: Principal, guid: str) -> Connector:
        """A connector of the caller's customer, with its scripts and icons listed.

        Raises:
            NotFound: no such connector for this caller.
        """
        async with self._engine.connect() as connection:
            return await self._load(connection, principal, guid, details=True)

    async def list_connectors(
        self, principal: Principal, limit: int, cursor: str | None
    ) -> tuple[list[Connector], str | None]:
        """A page of the caller's customer's connectors, oldest first."""
        query = select(connectors).where(connectors.c.customer_id == principal.customer_id)
        async with self._engine.connect() as connection:
            rows, next_cursor = await paginate(connection, query, connectors.c.id, limit, cursor)
            scripts = await scripts_of(connection, [r.id for r in rows])
            icons = await icons_of(connection, [r.id for r in rows])
        items = [connector_from_row(r, scripts.get(r.id, ()), icons.get(r.id, ())) for r in rows]
        return items, next_cursor

    async def update_connector(
        self, principal: Principal, guid: str, body: ConnectorUpdate
    ) -> Connector:
        """Replace the fields `body` gives.

        Raises:
            NotFound: no such connector for this caller.
            Forbidden: the caller is neither the owner nor an admin.
            Conflict: the new key is taken.
        """
        given = body.model_fields_set
        try:
            async with self._generations.begin(Area.CONNECTORS) as connection:
                current = await self._changeable(connection, principal, guid)
                if not given:
                    return current  # an empty patch changes nothing, not even updated_at
                values = definition_values(body, given)
                if body.auth is not None and not _keeps_secret(body.auth, current):
                    values.update(self._secret_values(current.customer_id, current.id, body.auth))
                values["updated_at"] = utcnow()
                await connection.execute(
                    update(connectors).where(connectors.c.id == current.id).values(**values)
                )
        except IntegrityError:
            raise Conflict(f"a connector with key {body.key!r} exists already") from None
        return await self.get_connector(principal, guid)

    async def delete_connector(self, principal: Principal, guid: str) -> None:
        """Delete a connector with its scripts and icons (its runs stay until purged).

        Raises:
            NotFound: no such connector for this caller.
            Forbidden: the caller is neither the owner nor an admin.
        """
        async with self._generations.begin(Area.CONNECTORS) as connection:
            current = await self._changeable(connection, principal, guid)
            await connection.execute(delete(connectors).where(connectors.c.id == current.id))

    # --- scripts -------------------------------------------------------------------------
    async def put_script(
        self, principal: Principal, guid: str, kind: ScriptKind, param: str, source: str
    ) -> ScriptInfo:
        """Store (or replace) one of the connector's scripts.

        `param` names the discovery parameter of a discovery script and is '' otherwise.

        Raises:
            NotFound: no such connector for this caller.
            Forbidden: the caller is neither the owner nor an admin.
            Invalid: the script is empty, too large, or serves no declared discovery parameter.
        """
        data = source.encode("utf-8")
        if not source.strip():
            raise Invalid("the script is empty", [field_error(["body"], "is empty", "empty")])
        if len(data) > MAX_SCRIPT_BYTES:
            raise Invalid(f"a script may have at most {MAX_SCRIPT_BYTES} bytes")
        info = ScriptInfo(kind, param, sha256_hex(data), len(data), utcnow())
        await self._put_child(
            principal,
            guid,
            connector_scripts,
            {"kind": kind.value, "param": param},
            {
                "source": source,
                "sha256": info.sha256,
                "size": info.size,
                "updated_at": info.updated_at,
            },
            check=lambda current: _check_script_target(current, kind, param),
        )
        return info

    async def get_script(
        self, principal: Principal, guid: str, kind: ScriptKind, param: str
    ) -> Script:
        """One of the connector's scripts.

        Raises:
            NotFound: no such connector for this caller, or no such script.
        """
        async with self._engine.connect() as connection:
            current = await self._load(connection, principal, guid)
            row = (
                await connection.execute(
                    select(connector_scripts).where(
                        connector_scripts.c.connector_id == current.id,
                        connector_scripts.c.kind == kind.value,
                        connector_scripts.c.param == param,
                    )
                )
            ).first()
        if row is None:
            raise NotFound(f"the connector has no {_script_name(kind, param)} yet")
        return Script(script_info_from_row(row), row.source)

    # --- icons ---------------------------------------------------------------------------
    async def put_icon(
        self, principal: Principal, guid: str, slot: IconSlot, png: bytes
    ) -> IconInfo:
        """Store (or replace) one of the connector's icons after checking the PNG.

        Raises:
            NotFound: no such connector for this caller.
            Forbidden: the caller is neither the owner nor an admin.
            Invalid: not a complete PNG, or not the slot's exact size.
        """
        info = check_icon(slot, png)
        await self._put_child(
            principal,
            guid,
            connector_icons,
            {"slot": slot.value},
            {
                "png": png,
                "width": info.width,
                "height": info.height,
                "sha256": info.sha256,
                "updated_at": info.updated_at,
            },
        )
        return info

    async def get_icon(self, principal: Principal, guid: str, slot: IconSlot) -> Icon:
        """One of the connector's icons.

        Raises:
            NotFound: no such connector for this caller, or no such icon.
        """
        async with self._engine.connect() as connection:
            current = await self._load(connection, principal, guid)
            row = (
                await connection.execute(
                    select(connector_icons).where(
                        connector_icons.c.connector_id == current.id,
                        connector_icons.c.slot == slot.value,
                    )
                )
            ).first()
        if row is None:
            raise NotFound(f"the connector has no {slot.value} yet")
        return Icon(icon_info_from_row(row), row.png)

    # --- for runs ------------------------------------------------------------------------
    async def get_by_key(self, principal: Principal, key: str) -> Connector:
        """The caller's customer's connector for a data-provider key (accounts name it so).

        Raises:
            NotFound: the customer has no connector with this key.
        """
        async with self._engine.connect() as connection:
            guid = (
                await connection.execute(
                    select(connectors.c.guid).where(
                        connectors.c.key == key, connectors.c.customer_id == principal.customer_id
                    )
                )
            ).scalar()
            if guid is None:
                raise NotFound(f"no connector with key {key!r}")
            return await self._load(connection, principal, guid)

    async def load_for_run(
        self, principal: Principal, guid: str, kind: ScriptKind, param: str
    ) -> tuple[Connector, str | None]:
        """The connector and the source of one of its scripts (None when not uploaded).

        Raises:
            NotFound: no such connector for this caller.
        """
        async with self._engine.connect() as connection:
            current = await self._load(connection, principal, guid)
            source = (
                await connection.execute(
                    select(connector_scripts.c.source).where(
                        connector_scripts.c.connector_id == current.id,
                        connector_scripts.c.kind == kind.value,
                        connector_scripts.c.param == param,
                    )
                )
            ).scalar()
        return current, source

    # --- helpers -------------------------------------------------------------------------
    async def _load(
        self,
        connection: AsyncConnection,
        principal: Principal,
        guid: str,
        *,
        details: bool = False,
    ) -> Connector:
        row = (
            await connection.execute(
                select(connectors).where(
                    connectors.c.guid == guid, connectors.c.customer_id == principal.customer_id
                )
            )
        ).first()
        if row is None:
            raise NotFound("no such connector")
        if not details:
            return connector_from_row(row, (), ())
        scripts = await scripts_of(connection, [row.id])
        icons = await icons_of(connection, [row.id])
        return connector_from_row(row, scripts.get(row.id, ()), icons.get(row.id, ()))

    async def _changeable(
        self, connection: AsyncConnection, principal: Principal, guid: str
    ) -> Connector:
        current = await self._load(connection, principal, guid)
        if not may_change(principal, current):
            raise Forbidden("only the connector's owner and its customer's admins change it")
        return current

    async def _put_child(
        self,
        principal: Principal,
        guid: str,
        table: Table,
        key: Mapping[str, str],
        values: Mapping[str, Any],
        *,
        check: Callable[[Connector], None] | None = None,
    ) -> None:
        """Update-then-insert a script or icon row; retried once when a concurrent first
        upload wins the unique key (PostgreSQL; SQLite writers are serialised)."""
        for attempt in (1, 2):
            try:
                async with self._generations.begin(Area.CONNECTORS) as connection:
                    current = await self._changeable(connection, principal, guid)
                    if check is not None:
                        check(current)
                    await _upsert(connection, table, current, key, values)
                return
            except IntegrityError:
                if attempt == 2:
                    raise

    def _secret_values(
        self, customer_id: str, connector_id: str, auth: AuthConfig
    ) -> dict[str, Any]:
        """The sealed client secret columns for `auth` (cleared when there is none)."""
        secret = auth.client_secret if isinstance(auth, OAuth2Auth) else None
        if secret is None or self._sealer is None:
            # Without a sealer the secret is dropped: it is never stored in plain text.
            return {"client_secret_ciphertext": None, "client_secret_key_id": None}
        key_id, ciphertext = self._sealer.seal_client_secret(
            customer_id, connector_id, secret.get_secret_value()
        )
        return {"client_secret_ciphertext": ciphertext, "client_secret_key_id": key_id}


async def _upsert(
    connection: AsyncConnection,
    table: Table,
    connector: Connector,
    key: Mapping[str, str],
    values: Mapping[str, Any],
) -> None:
    """Write `values` (with `updated_at`) to the child row named by `key`, and touch the parent."""
    where = [table.c.connector_id == connector.id, *(table.c[k] == v for k, v in key.items())]
    changed = await connection.execute(update(table).where(*where).values(**values))
    if changed.rowcount == 0:
        await connection.execute(
            insert(table).values(
                id=new_id(),
                customer_id=connector.customer_id,
                connector_id=connector.id,
                **key,
                **values,
            )
        )
    await connection.execute(
        update(connectors)
        .where(connectors.c.id == connector.id)
        .values(updated_at=values["updated_at"])
    )


def _keeps_secret(auth: AuthConfig, current: Connector) -> bool:
    """An OAuth update without a client secret keeps the one already sealed."""
    return isinstance(auth, OAuth2Auth) and auth.client_secret is None and current.client_secret_set


def check_icon(slot: IconSlot, png: bytes) -> IconInfo:
    """Check that `png` is a complete PNG of the slot's exact size.

    Raises:
        Invalid: what is wrong (not a PNG, truncated, corrupt, or the wrong size).
    """
    try:
        header = inspect_png(png)
    except InvalidPng as exc:
        raise Invalid(str(exc), [field_error(["body"], str(exc), "png")]) from None
    width, height = ICON_SIZES[slot]
    if (header.width, header.height) != (width, height):
        message = (
            f"the {slot.value} must be {width}x{height} pixels; "
            f"this PNG is {header.width}x{header.height}"
        )
        raise Invalid(message, [field_error(["body"], message, "png_size")])
    return IconInfo(slot, width, height, sha256_hex(png), utcnow())


def _check_script_target(connector: Connector, kind: ScriptKind, param: str) -> None:
    if kind is not ScriptKind.DISCOVERY:
        return
    parameter = connector.parameter(param)
    if parameter is None or parameter.type is not ParameterType.DISCOVERY:
        message = f"the connector declares no discovery parameter named {param!r}"
        raise Invalid(message, [field_error(["path", "param"], message, "unknown")])


def _script_name(kind: ScriptKind, param: str) -> str:
    return f"discovery script for {param!r}" if param else f"{kind.value} script"
