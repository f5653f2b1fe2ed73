"""Published versions (SPEC 2, 4.3): immutable snapshots of a connector, and what a run uses."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from sqlalchemy import Row, func, insert, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway.connectors.errors import Invalid, field_error
from gateway.connectors.models import ConnectorKind, ParameterType, Scope, ScriptKind
from gateway.connectors.records import (
    Connector,
    connector_from_row,
    definition_document,
    with_definition,
)
from gateway.connectors.scopes import change_scope
from gateway.connectors.tables import (
    connector_icons,
    connector_scripts,
    connector_version_scripts,
    connector_versions,
    connectors,
)
from gateway.errors import Conflict, Forbidden, NotFound
from gateway.identity.principal import Principal
from gateway.store.cache import Cache
from gateway.store.generations import Area, Generations
from gateway.store.ids import new_id
from gateway.store.paging import paginate
from gateway.store.tables import utcnow
from runtime.model import JsonValue

# What runs use (decision 0019), by customer, user, connector, script and run scope: every
# connector write drops it at once here and at the next poll elsewhere.
RUNNABLE_MAX: Final = 5_000
RUNNABLE_MAX_AGE_S: Final = 60.0

RunnableKey = tuple[str, str, str, ScriptKind, str, Scope | None]
"""(customer id, user id, guid, script kind, script parameter, run scope)."""


@dataclass(frozen=True, slots=True)
class VersionScript:
    """A script of a published version, without its source."""

    kind: ScriptKind
    param: str
    sha256: str
    size: int


@dataclass(frozen=True, slots=True)
class Version:
    """A published version: the definition and scripts as they were, who published, when."""

    number: int
    connector_guid: str
    created_by: str
    created_at: datetime
    definition: dict[str, JsonValue]
    icons: dict[str, str]
    """The icons by digest: {slot: sha256}."""
    scripts: tuple[VersionScript, ...]


@dataclass(frozen=True, slots=True)
class Runnable:
    """What a run uses: the connector as its version defines it, one script, which version."""

    connector: Connector
    source: str | None
    """The script's source; None when that script does not exist in what is run."""
    version: int | None
    """The published version's number; None for the owner's draft."""


class VersionService:
    """Publishes connectors' drafts as numbered versions and answers what a run uses.

    A version is visible to whoever sees its connector: the users of its customer, and
    every user for a global connector. Publishing is for the customer's admins.
    """

    def __init__(self, engine: AsyncEngine, generations: Generations | None = None) -> None:
        self._engine = engine
        self._generations = generations = generations or Generations(engine)
        self._runnable: Cache[RunnableKey, Runnable] = generations.cache(
            Area.CONNECTORS, "runnable", max_size=RUNNABLE_MAX, max_age_s=RUNNABLE_MAX_AGE_S
        )

    async def publish(self, principal: Principal, guid: str) -> Version:
        """Publish the draft as the next version; a personal action becomes `customer`.

        Raises:
            NotFound: no such connector in the caller's customer.
            Forbidden: the caller is not an admin of the connector's customer.
            Invalid: a script the draft needs is missing (`errors` name each).
            Conflict: a concurrent publish of the same connector took the number.
        """
        try:
            async with self._generations.begin(Area.CONNECTORS) as connection:
                row = await _row(connection, principal, guid, own_customer=True)
                if not principal.is_admin_of(row.customer_id):
                    raise Forbidden("only the customer's admins publish its connectors")
                number = await _snapshot(connection, principal, row)
        except IntegrityError:
            raise Conflict("another publish of this connector won; publish again") from None
        return await self.get_version(principal, guid, number)

    async def list_versions(
        self, principal: Principal, guid: str, limit: int, cursor: str | None
    ) -> tuple[list[Version], str | None]:
        """A page of the connector's versions, newest first, without script sources.

        Raises:
            NotFound: no such connector for this caller.
        """
        async with self._engine.connect() as connection:
            row = await _row(connection, principal, guid)
            query = select(connector_versions).where(connector_versions.c.connector_id == row.id)
            rows, next_cursor = await paginate(
                connection, query, connector_versions.c.id, limit, cursor, descending=True
            )
            scripts = await _scripts_of(connection, [r.id for r in rows])
        return [_version(r, guid, scripts.get(r.id, ())) for r in rows], next_cursor

    async def get_version(self, principal: Principal, guid: str, number: int) -> Version:
        """One version of the connector, without script sources.

        Raises:
            NotFound: no such connector for this caller, or no such version.
        """
        async with self._engine.connect() as connection:
            row = await _row(connection, principal, guid)
            version = (
                await connection.execute(
                    select(connector_versions).where(
                        connector_versions.c.connector_id == row.id,
                        connector_versions.c.number == number,
                    )
                )
            ).first()
            if version is None:
                raise NotFound(f"the connector has no version {number}")
            scripts = await _scripts_of(connection, [version.id])
        return _version(version, guid, scripts.get(version.id, ()))

    async def runnable(
        self,
        principal: Principal,
        guid: str,
        kind: ScriptKind,
        param: str = "",
        *,
        scope: Scope | None = None,
    ) -> Runnable:
        """The definition and script a run of this connector by this caller uses (SPEC 4.3).

        The owner's runs in the personal scope (`scope`, the run's scope, defaults to the
        connector's) use the draft; every other run uses the latest published version.
        Who may run the connector in that scope is the caller's to check.

        Raises:
            NotFound: no such connector for this caller.
            Conflict: the run needs a published version and there is none.
        """
        key = (principal.customer_id, principal.user_id, guid, kind, param, scope)
        return await self._runnable.get_or_load(
            key, lambda: self._load_runnable(principal, guid, kind, param, scope)
        )

    async def _load_runnable(
        self, principal: Principal, guid: str, kind: ScriptKind, param: str, scope: Scope | None
    ) -> Runnable:
        async with self._engine.connect() as connection:
            row = await _row(connection, principal, guid)
            connector = connector_from_row(row, (), ())
            if principal.user_id == connector.owner_id and (
                (scope or connector.scope) is Scope.PERSONAL
            ):
                return Runnable(
                    connector, await _draft_source(connection, row.id, kind, param), None
                )
            return await _published(connection, connector, kind, param)

    async def visible(self, principal: Principal, guid: str) -> Connector:
        """The connector as its draft stands, if the caller may see it (its customer's, or a
        global one); for deciding why a run that `runnable` refused may not happen.

        Raises:
            NotFound: no such connector for this caller.
        """
        async with self._engine.connect() as connection:
            return connector_from_row(await _row(connection, principal, guid), (), ())


async def _row(
    connection: AsyncConnection, principal: Principal, guid: str, *, own_customer: bool = False
) -> Row[*tuple[Any, ...]]:
    """The connector row the caller may see: its customer's, or a global one."""
    visible = connectors.c.customer_id == principal.customer_id
    if not own_customer:
        visible = or_(visible, connectors.c.scope == Scope.GLOBAL.value)
    row = (
        await connection.execute(select(connectors).where(connectors.c.guid == guid, visible))
    ).first()
    if row is None:
        raise NotFound("no such connector")
    return row


async def _snapshot(
    connection: AsyncConnection, principal: Principal, row: Row[*tuple[Any, ...]]
) -> int:
    """Copy the draft into the next version and return its number."""
    scripts = (
        await connection.execute(
            select(connector_scripts).where(connector_scripts.c.connector_id == row.id)
        )
    ).all()
    _check_publishable(connector_from_row(row, (), ()), scripts)
    icons = await connection.execute(
        select(connector_icons.c.slot, connector_icons.c.sha256).where(
            connector_icons.c.connector_id == row.id
        )
    )
    latest = await connection.execute(
        select(func.max(connector_versions.c.number)).where(
            connector_versions.c.connector_id == row.id
        )
    )
    number = (latest.scalar() or 0) + 1
    version_id = new_id()
    await connection.execute(
        insert(connector_versions).values(
            id=version_id,
            customer_id=row.customer_id,
            connector_id=row.id,
            number=number,
            created_by=principal.user_id,
            definition=definition_document(row),
            icons={icon.slot: icon.sha256 for icon in icons},
            created_at=utcnow(),
        )
    )
    await connection.execute(
        insert(connector_version_scripts),
        [
            {
                "id": new_id(),
                "customer_id": row.customer_id,
                "version_id": version_id,
                "kind": script.kind,
                "param": script.param,
                "source": script.source,
                "sha256": script.sha256,
                "size": script.size,
            }
            for script in scripts
        ],
    )
    if row.kind == ConnectorKind.ACTION.value and row.scope == Scope.PERSONAL.value:
        await change_scope(
            connection, row, principal, Scope.CUSTOMER, f"published as version {number}"
        )
    return number


def _check_publishable(connector: Connector, scripts: Sequence[Row[*tuple[Any, ...]]]) -> None:
    """Refuse a draft without the scripts its runs need: the process script, the auth script
    unless the connector has no authentication, a discovery script per discovery parameter.

    Raises:
        Invalid: naming each missing script.
    """
    present = {(script.kind, script.param) for script in scripts}
    needed = [(ScriptKind.PROCESS.value, "")]
    if connector.auth.method != "none":
        needed.append((ScriptKind.AUTH.value, ""))
    needed += [
        (ScriptKind.DISCOVERY.value, p.name)
        for p in connector.parameters
        if p.type is ParameterType.DISCOVERY
    ]
    errors = [
        field_error(["scripts", kind, *([param] if param else [])], "is missing", "missing")
        for kind, param in needed
        if (kind, param) not in present
    ]
    if errors:
        missing = ", ".join(".".join(str(part) for part in e["loc"][1:]) for e in errors)
        raise Invalid(f"the draft cannot be published without its scripts: {missing}", errors)


async def _draft_source(
    connection: AsyncConnection, connector_id: str, kind: ScriptKind, param: str
) -> str | None:
    source: str | None = (
        await connection.execute(
            select(connector_scripts.c.source).where(
                connector_scripts.c.connector_id == connector_id,
                connector_scripts.c.kind == kind.value,
                connector_scripts.c.param == param,
            )
        )
    ).scalar()
    return source


async def _published(
    connection: AsyncConnection, connector: Connector, kind: ScriptKind, param: str
) -> Runnable:
    version = (
        await connection.execute(
            select(connector_versions)
            .where(connector_versions.c.connector_id == connector.id)
            .order_by(connector_versions.c.number.desc())
            .limit(1)
        )
    ).first()
    if version is None:
        raise Conflict("the connector has no published version yet")
    source: str | None = (
        await connection.execute(
            select(connector_version_scripts.c.source).where(
                connector_version_scripts.c.version_id == version.id,
                connector_version_scripts.c.kind == kind.value,
                connector_version_scripts.c.param == param,
            )
        )
    ).scalar()
    return Runnable(with_definition(connector, version.definition), source, version.number)


async def _scripts_of(
    connection: AsyncConnection, version_ids: Sequence[str]
) -> dict[str, tuple[VersionScript, ...]]:
    if not version_ids:
        return {}
    query = (
        select(
            connector_version_scripts.c.version_id,
            connector_version_scripts.c.kind,
            connector_version_scripts.c.param,
            connector_version_scripts.c.sha256,
            connector_version_scripts.c.size,
        )
        .where(connector_version_scripts.c.version_id.in_(version_ids))
        .order_by(connector_version_scripts.c.kind, connector_version_scripts.c.param)
    )
    found: dict[str, list[VersionScript]] = {}
    for row in await connection.execute(query):
        script = VersionScript(ScriptKind(row.kind), row.param, row.sha256, row.size)
        found.setdefault(row.version_id, []).append(script)
    return {key: tuple(value) for key, value in found.items()}


def _version(row: Row[*tuple[Any, ...]], guid: str, scripts: Sequence[VersionScript]) -> Version:
    return Version(
        number=row.number,
        connector_guid=guid,
        created_by=row.created_by,
        created_at=row.created_at,
        definition=row.definition,
        icons=row.icons,
        scripts=tuple(scripts),
    )
