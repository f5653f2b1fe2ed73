"""Action scopes (SPEC 5): who may change them, their append-only audit, who may run what."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Row, ScalarSelect, and_, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway.connectors.errors import ActionNotFound, ScopeNotAllowed
from gateway.connectors.models import ConnectorKind, Scope
from gateway.connectors.tables import connector_versions, connectors, scope_changes
from gateway.errors import Conflict, Forbidden
from gateway.identity.principal import Principal, Role
from gateway.store.generations import Area, Generations
from gateway.store.ids import new_id
from gateway.store.paging import paginate
from gateway.store.tables import utcnow


@dataclass(frozen=True, slots=True)
class ActionInfo:
    """An action as the scope endpoints and the action list show it."""

    guid: str
    name: str
    key: str
    customer_id: str
    owner_id: str
    scope: Scope
    version: int | None
    """The latest published version; None when the action was never published."""


@dataclass(frozen=True, slots=True)
class ScopeChange:
    """One audited change of an action's scope."""

    id: str
    connector_guid: str
    changed_by: str
    from_scope: Scope
    to_scope: Scope
    reason: str
    created_at: datetime


def latest_version() -> ScalarSelect[Any]:
    """The number of a connector row's latest published version (NULL: none), correlated."""
    return (
        select(func.max(connector_versions.c.number))
        .where(connector_versions.c.connector_id == connectors.c.id)
        .scalar_subquery()
    )


def may_set_scope(principal: Principal, customer_id: str, current: Scope, target: Scope) -> bool:
    """Customer admins move their customer's actions between personal and customer; only
    platform admins grant or revoke global."""
    if principal.role is Role.PLATFORM_ADMIN:
        return True
    if Scope.GLOBAL in (current, target):
        return False
    return principal.is_admin_of(customer_id)


async def change_scope(
    connection: AsyncConnection,
    row: Row[*tuple[Any, ...]],
    principal: Principal,
    target: Scope,
    reason: str,
) -> None:
    """Set a connector row's scope and append the change to the audit, in the caller's
    transaction."""
    await connection.execute(
        update(connectors).where(connectors.c.id == row.id).values(scope=target.value)
    )
    await connection.execute(
        insert(scope_changes).values(
            id=new_id(),
            customer_id=row.customer_id,
            connector_id=row.id,
            changed_by=principal.user_id,
            from_scope=row.scope,
            to_scope=target.value,
            reason=reason,
            created_at=utcnow(),
        )
    )


def _action_info(row: Row[*tuple[Any, ...]]) -> ActionInfo:
    return ActionInfo(
        guid=row.guid,
        name=row.name,
        key=row.key,
        customer_id=row.customer_id,
        owner_id=row.owner_id,
        scope=Scope(row.scope),
        version=row.version,
    )


def _action_query() -> Any:
    return select(
        connectors.c.id,
        connectors.c.guid,
        connectors.c.name,
        connectors.c.key,
        connectors.c.customer_id,
        connectors.c.owner_id,
        connectors.c.scope,
        latest_version().label("version"),
    ).where(connectors.c.kind == ConnectorKind.ACTION.value)


class ScopeService:
    """Changes action scopes under the rules of SPEC 5, audits every change, lists actions.

    The admin endpoints see the caller's customer's actions; a platform admin, who reviews
    and promotes for every customer, sees every customer's (decision 0014).
    """

    def __init__(self, engine: AsyncEngine, generations: Generations | None = None) -> None:
        self._engine = engine
        self._generations = generations or Generations(engine)

    async def set_scope(
        self, principal: Principal, guid: str, target: Scope, reason: str
    ) -> ActionInfo:
        """Give an action a scope and audit the change (a change to the same scope is none).

        Raises:
            ActionNotFound: no such action for this caller.
            ScopeNotAllowed: the caller may not make this change.
            Conflict: the action was never published, or its key is taken among global ones.
        """
        async with self._generations.begin(Area.CONNECTORS) as connection:
            row = await self._action(connection, principal, guid)
            current = Scope(row.scope)
            if not may_set_scope(principal, row.customer_id, current, target):
                raise ScopeNotAllowed(_refusal(current, target))
            if target is current:
                return _action_info(row)
            if row.version is None:
                raise Conflict("publish the action first: an unpublished action stays personal")
            if target is Scope.GLOBAL:
                await _check_global_key(connection, row)
            try:
                await change_scope(connection, row, principal, target, reason)
            except IntegrityError:
                # Two promotions of actions with one key raced; the unique index let one win.
                raise Conflict(_key_taken(row.key)) from None
        async with self._engine.connect() as connection:
            return _action_info(await self._action(connection, principal, guid))

    async def scope_history(
        self, principal: Principal, guid: str, limit: int, cursor: str | None
    ) -> tuple[list[ScopeChange], str | None]:
        """A page of an action's scope changes, newest first (its customer's admins).

        Raises:
            ActionNotFound: no such action for this caller.
            Forbidden: the caller is not an admin of the action's customer.
        """
        async with self._engine.connect() as connection:
            row = await self._action(connection, principal, guid)
            if not (
                principal.is_admin_of(row.customer_id) or principal.role is Role.PLATFORM_ADMIN
            ):
                raise Forbidden("the scope history is for the customer's admins")
            query = select(scope_changes).where(scope_changes.c.connector_id == row.id)
            rows, next_cursor = await paginate(
                connection, query, scope_changes.c.id, limit, cursor, descending=True
            )
        return [_scope_change(change, row.guid) for change in rows], next_cursor

    async def runnable_actions(
        self, principal: Principal, limit: int, cursor: str | None
    ) -> tuple[list[ActionInfo], str | None]:
        """A page of the actions the caller may run, oldest first: its own personal ones,
        its customer's published `customer` ones, and every global one."""
        version = latest_version()
        query = _action_query().where(
            or_(
                and_(
                    connectors.c.scope == Scope.PERSONAL.value,
                    connectors.c.customer_id == principal.customer_id,
                    connectors.c.owner_id == principal.user_id,
                ),
                and_(
                    connectors.c.scope == Scope.CUSTOMER.value,
                    connectors.c.customer_id == principal.customer_id,
                    version.is_not(None),
                ),
                and_(connectors.c.scope == Scope.GLOBAL.value, version.is_not(None)),
            )
        )
        async with self._engine.connect() as connection:
            rows, next_cursor = await paginate(connection, query, connectors.c.id, limit, cursor)
        return [_action_info(row) for row in rows], next_cursor

    async def _action(
        self, connection: AsyncConnection, principal: Principal, guid: str
    ) -> Row[*tuple[Any, ...]]:
        query = _action_query().where(connectors.c.guid == guid)
        if principal.role is not Role.PLATFORM_ADMIN:
            query = query.where(connectors.c.customer_id == principal.customer_id)
        row: Row[*tuple[Any, ...]] | None = (await connection.execute(query)).first()
        if row is None:
            raise ActionNotFound("no such action")
        return row


async def _check_global_key(connection: AsyncConnection, row: Row[*tuple[Any, ...]]) -> None:
    taken = (
        await connection.execute(
            select(connectors.c.id).where(
                connectors.c.key == row.key,
                connectors.c.scope == Scope.GLOBAL.value,
                connectors.c.id != row.id,
            )
        )
    ).first()
    if taken is not None:
        raise Conflict(_key_taken(row.key))


def _key_taken(key: str) -> str:
    return f"a global connector with key {key!r} exists already"


def _refusal(current: Scope, target: Scope) -> str:
    if Scope.GLOBAL in (current, target):
        return "only platform admins grant or revoke the global scope"
    return "only the customer's admins change the scope of its actions"


def _scope_change(row: Row[*tuple[Any, ...]], guid: str) -> ScopeChange:
    return ScopeChange(
        id=row.id,
        connector_guid=guid,
        changed_by=row.changed_by,
        from_scope=Scope(row.from_scope),
        to_scope=Scope(row.to_scope),
        reason=row.reason,
        created_at=row.created_at,
    )
