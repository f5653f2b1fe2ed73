"""Action endpoints (SPEC 4.2, 5): what the caller may run, and the scope of an action."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Final

from aiohttp import web
from pydantic import BaseModel, StringConstraints

from gateway.auth import principal_of
from gateway.connectors.models import Scope
from gateway.connectors.scopes import ActionInfo, ScopeChange
from gateway.keys import CONNECTORS
from gateway.text import FREE_TEXT
from gateway.wire import ParseModel, json_model, page_parameters, parse_body

REASON_LENGTH: Final = 2000
Reason = Annotated[str, StringConstraints(min_length=1, max_length=REASON_LENGTH), FREE_TEXT]


class ScopeSet(ParseModel):
    """`PUT /api/v1/admin/actions/{guid}/scope`: the new scope and why (audited)."""

    scope: Scope
    reason: Reason


class ActionOut(BaseModel):
    """An action as the action list and the scope endpoint show it."""

    guid: str
    name: str
    key: str
    customer_id: str
    scope: Scope
    version: int | None


class ActionPage(BaseModel):
    """A page of actions."""

    items: list[ActionOut]
    next_cursor: str | None


class ScopeChangeOut(BaseModel):
    """One audited scope change."""

    id: str
    connector_guid: str
    changed_by: str
    from_scope: Scope
    to_scope: Scope
    reason: str
    created_at: datetime


class ScopeChangePage(BaseModel):
    """A page of scope changes."""

    items: list[ScopeChangeOut]
    next_cursor: str | None


def action_out(action: ActionInfo) -> ActionOut:
    """The wire form of an action."""
    return ActionOut(
        guid=action.guid,
        name=action.name,
        key=action.key,
        customer_id=action.customer_id,
        scope=action.scope,
        version=action.version,
    )


def scope_change_out(change: ScopeChange) -> ScopeChangeOut:
    """The wire form of a scope change."""
    return ScopeChangeOut(
        id=change.id,
        connector_guid=change.connector_guid,
        changed_by=change.changed_by,
        from_scope=change.from_scope,
        to_scope=change.to_scope,
        reason=change.reason,
        created_at=change.created_at,
    )


async def list_actions(request: web.Request) -> web.Response:
    """A page of the actions the caller may run."""
    principal = principal_of(request)
    limit, cursor = page_parameters(request)
    items, next_cursor = await request.app[CONNECTORS].scopes.runnable_actions(
        principal, limit, cursor
    )
    return json_model(ActionPage(items=[action_out(a) for a in items], next_cursor=next_cursor))


async def set_scope(request: web.Request) -> web.Response:
    """Change an action's scope (audited)."""
    principal = principal_of(request)
    body = await parse_body(request, ScopeSet)
    action = await request.app[CONNECTORS].scopes.set_scope(
        principal, request.match_info["guid"], body.scope, body.reason
    )
    return json_model(action_out(action))


async def scope_history(request: web.Request) -> web.Response:
    """A page of an action's scope changes, newest first."""
    principal = principal_of(request)
    limit, cursor = page_parameters(request)
    items, next_cursor = await request.app[CONNECTORS].scopes.scope_history(
        principal, request.match_info["guid"], limit, cursor
    )
    return json_model(
        ScopeChangePage(items=[scope_change_out(c) for c in items], next_cursor=next_cursor)
    )


def register(app: web.Application) -> None:
    """Add the action routes."""
    app.router.add_get("/api/v1/actions", list_actions)
    app.router.add_put("/api/v1/admin/actions/{guid}/scope", set_scope)
    app.router.add_get("/api/v1/admin/actions/{guid}/scope-history", scope_history)
