"""Connector endpoints (SPEC 4.2): definitions, scripts and icons."""

from __future__ import annotations

from datetime import datetime
from http import HTTPStatus
from typing import Any, Final, Literal

from aiohttp import web
from pydantic import BaseModel

from gateway.auth import principal_of
from gateway.connectors.icons import MAX_ICON_BYTES
from gateway.connectors.models import (
    AccountField,
    ConnectorCreate,
    ConnectorKind,
    ConnectorLimits,
    ConnectorStatus,
    ConnectorUpdate,
    IconSlot,
    OAuth2Auth,
    Parameter,
    Scope,
    ScriptKind,
)
from gateway.connectors.records import Connector, IconInfo, ScriptInfo
from gateway.connectors.service import MAX_SCRIPT_BYTES
from gateway.connectors.versions import Version
from gateway.errors import NotFound
from gateway.keys import CONNECTORS, POOL
from gateway.problems import ProblemError
from gateway.wire import json_model, page_parameters, parse_body

SCRIPT_TYPES: Final = frozenset({"application/javascript", "text/javascript", "text/plain"})
_UTF8: Final = frozenset({"utf-8", "utf8"})


class ScriptOut(BaseModel):
    """A stored script, without its source."""

    kind: ScriptKind
    param: str | None
    sha256: str
    size: int
    updated_at: datetime


class SyntaxOk(BaseModel):
    """The uploaded script parses."""

    ok: Literal[True] = True


class SyntaxFailed(BaseModel):
    """The uploaded script does not parse: the error a run would report, and where."""

    ok: Literal[False] = False
    message: str
    line: int | None
    column: int | None


class ScriptStored(ScriptOut):
    """The answer to an upload: the stored script and whether it parses (SPEC 4.3)."""

    syntax: SyntaxOk | SyntaxFailed


class IconOut(BaseModel):
    """A stored icon, without its bytes."""

    slot: IconSlot
    width: int
    height: int
    sha256: str
    updated_at: datetime


class ConnectorOut(BaseModel):
    """A connector as the API shows it: never the client secret, only whether one is set."""

    id: str
    guid: str
    customer_id: str
    owner_id: str
    kind: ConnectorKind
    name: str
    key: str
    description: str
    auth: dict[str, Any]
    account_fields: list[AccountField]
    allowed_hosts: list[str]
    parameters: list[Parameter]
    reports: list[str]
    limits: ConnectorLimits
    scope: Scope
    status: ConnectorStatus
    scripts: list[ScriptOut]
    icons: list[IconOut]
    created_at: datetime
    updated_at: datetime


class ConnectorPage(BaseModel):
    """A page of connectors."""

    items: list[ConnectorOut]
    next_cursor: str | None


class VersionScriptOut(BaseModel):
    """A script of a published version, without its source."""

    kind: ScriptKind
    param: str | None
    sha256: str
    size: int


class VersionOut(BaseModel):
    """A published version: its definition, its scripts' digests, its icons' digests."""

    number: int
    connector_guid: str
    created_by: str
    created_at: datetime
    definition: dict[str, Any]
    icons: dict[str, str]
    scripts: list[VersionScriptOut]


class VersionPage(BaseModel):
    """A page of versions."""

    items: list[VersionOut]
    next_cursor: str | None


def version_out(version: Version) -> VersionOut:
    """The wire form of a version."""
    return VersionOut(
        number=version.number,
        connector_guid=version.connector_guid,
        created_by=version.created_by,
        created_at=version.created_at,
        definition=version.definition,
        icons=version.icons,
        scripts=[
            VersionScriptOut(kind=s.kind, param=s.param or None, sha256=s.sha256, size=s.size)
            for s in version.scripts
        ],
    )


def script_out(info: ScriptInfo) -> ScriptOut:
    """The wire form of a script's summary."""
    return ScriptOut(
        kind=info.kind,
        param=info.param or None,
        sha256=info.sha256,
        size=info.size,
        updated_at=info.updated_at,
    )


def icon_out(info: IconInfo) -> IconOut:
    """The wire form of an icon's summary."""
    return IconOut(
        slot=info.slot,
        width=info.width,
        height=info.height,
        sha256=info.sha256,
        updated_at=info.updated_at,
    )


def connector_out(connector: Connector) -> ConnectorOut:
    """The wire form of a connector."""
    auth = connector.auth.model_dump(mode="json", exclude={"client_secret"})
    if isinstance(connector.auth, OAuth2Auth):
        auth["client_secret_set"] = connector.client_secret_set
    return ConnectorOut(
        id=connector.id,
        guid=connector.guid,
        customer_id=connector.customer_id,
        owner_id=connector.owner_id,
        kind=connector.kind,
        name=connector.name,
        key=connector.key,
        description=connector.description,
        auth=auth,
        account_fields=list(connector.account_fields),
        allowed_hosts=list(connector.allowed_hosts),
        parameters=list(connector.parameters),
        reports=list(connector.reports),
        limits=connector.limits,
        scope=connector.scope,
        status=connector.status,
        scripts=[script_out(s) for s in connector.scripts],
        icons=[icon_out(i) for i in connector.icons],
        created_at=connector.created_at,
        updated_at=connector.updated_at,
    )


def _location(connector: Connector) -> str:
    return f"/api/v1/connectors/{connector.guid}"


async def create_connector(request: web.Request) -> web.Response:
    """Create a draft connector owned by the caller."""
    principal = principal_of(request)
    body = await parse_body(request, ConnectorCreate)
    connector = await request.app[CONNECTORS].create_connector(principal, body)
    return json_model(
        connector_out(connector),
        status=HTTPStatus.CREATED,
        headers={"Location": _location(connector)},
    )


async def list_connectors(request: web.Request) -> web.Response:
    """A page of the caller's customer's connectors."""
    principal = principal_of(request)
    limit, cursor = page_parameters(request)
    items, next_cursor = await request.app[CONNECTORS].list_connectors(principal, limit, cursor)
    return json_model(
        ConnectorPage(items=[connector_out(c) for c in items], next_cursor=next_cursor)
    )


async def get_connector(request: web.Request) -> web.Response:
    """One connector of the caller's customer."""
    principal = principal_of(request)
    guid = request.match_info["guid"]
    return json_model(connector_out(await request.app[CONNECTORS].get_connector(principal, guid)))


async def update_connector(request: web.Request) -> web.Response:
    """Change a connector (its owner or an admin)."""
    principal = principal_of(request)
    body = await parse_body(request, ConnectorUpdate)
    guid = request.match_info["guid"]
    connector = await request.app[CONNECTORS].update_connector(principal, guid, body)
    return json_model(connector_out(connector))


async def delete_connector(request: web.Request) -> web.Response:
    """Delete a connector (its owner or an admin)."""
    principal = principal_of(request)
    await request.app[CONNECTORS].delete_connector(principal, request.match_info["guid"])
    return web.Response(status=HTTPStatus.NO_CONTENT)


# --- versions --------------------------------------------------------------------------------


async def publish_connector(request: web.Request) -> web.Response:
    """Publish the draft as a new version (interim: the review flow will replace this)."""
    principal = principal_of(request)
    guid = request.match_info["guid"]
    version = await request.app[CONNECTORS].versions.publish(principal, guid)
    return json_model(
        version_out(version),
        status=HTTPStatus.CREATED,
        headers={"Location": f"/api/v1/connectors/{guid}/versions/{version.number}"},
    )


async def list_versions(request: web.Request) -> web.Response:
    """A page of the connector's published versions, newest first."""
    principal = principal_of(request)
    limit, cursor = page_parameters(request)
    items, next_cursor = await request.app[CONNECTORS].versions.list_versions(
        principal, request.match_info["guid"], limit, cursor
    )
    return json_model(VersionPage(items=[version_out(v) for v in items], next_cursor=next_cursor))


async def get_version(request: web.Request) -> web.Response:
    """One published version of the connector."""
    principal = principal_of(request)
    text = request.match_info["number"]
    if not text.isdigit() or len(text) > 9:
        raise NotFound("versions are numbered 1, 2, ...")
    version = await request.app[CONNECTORS].versions.get_version(
        principal, request.match_info["guid"], int(text)
    )
    return json_model(version_out(version))


# --- scripts ---------------------------------------------------------------------------------


def _script_target(request: web.Request) -> tuple[ScriptKind, str]:
    """The script a path names: `scripts/auth`, `scripts/process`, `scripts/discovery/<p>`."""
    if "param" in request.match_info:
        return ScriptKind.DISCOVERY, request.match_info["param"]
    kind = request.match_info["kind"]
    if kind not in (ScriptKind.AUTH, ScriptKind.PROCESS):
        raise NotFound("scripts are auth, process or discovery/<parameter>")
    return ScriptKind(kind), ""


async def read_limited(request: web.Request, limit: int, what: str) -> bytes:
    """The request body, refused when larger than `limit` bytes.

    Raises:
        ProblemError: `payload_too_large` (413).
    """
    too_large = ProblemError("payload_too_large", f"{what} may have at most {limit} bytes")
    if request.content_length is not None and request.content_length > limit:
        raise too_large
    data = await request.read()
    if len(data) > limit:
        raise too_large
    return data


async def _script_source(request: web.Request) -> str:
    charset = (request.charset or "utf-8").lower()
    if request.content_type not in SCRIPT_TYPES or charset not in _UTF8:
        raise ProblemError(
            "unsupported_media_type",
            "send the script as application/javascript, text/javascript or text/plain in UTF-8",
        )
    data = await read_limited(request, MAX_SCRIPT_BYTES, "a script")
    try:
        source = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ProblemError(
            "validation_failed",
            "the script is not UTF-8 text",
            errors=[{"loc": ["body"], "msg": "is not UTF-8 text", "type": "encoding"}],
        ) from None
    if "\x00" in source:
        # PostgreSQL text cannot hold NUL, and no script needs a raw one (JS writes "\0").
        raise ProblemError(
            "validation_failed",
            "the script holds a NUL character",
            errors=[{"loc": ["body"], "msg": "holds a NUL character", "type": "encoding"}],
        )
    return source


async def put_script(request: web.Request) -> web.Response:
    """Upload (or replace) a script, stored even when it does not parse (drafts may be
    unfinished); answers its size, SHA-256 and whether it parses."""
    principal = principal_of(request)
    kind, param = _script_target(request)
    source = await _script_source(request)
    # Parsed by a worker (JavaScript is never parsed in the gateway), before anything is stored
    # so that a busy pool refuses the whole upload.
    check = await request.app[POOL].check_syntax(source, tenant=principal.customer_id)
    info = await request.app[CONNECTORS].put_script(
        principal, request.match_info["guid"], kind, param, source
    )
    syntax: SyntaxOk | SyntaxFailed = (
        SyntaxOk()
        if check.ok
        else SyntaxFailed(message=check.message or "", line=check.line, column=check.column)
    )
    stored = ScriptStored(**script_out(info).model_dump(), syntax=syntax)
    return json_model(stored, headers={"ETag": f'"{info.sha256}"'})


async def get_script(request: web.Request) -> web.Response:
    """Download a script."""
    principal = principal_of(request)
    kind, param = _script_target(request)
    script = await request.app[CONNECTORS].get_script(
        principal, request.match_info["guid"], kind, param
    )
    return web.Response(
        text=script.source,
        content_type="application/javascript",
        charset="utf-8",
        headers={"ETag": f'"{script.info.sha256}"'},
    )


# --- icons -----------------------------------------------------------------------------------


def _slot(request: web.Request) -> IconSlot:
    try:
        return IconSlot(request.match_info["slot"])
    except ValueError:
        raise NotFound("icons are icon, icon_plain, logo or banner") from None


async def put_icon(request: web.Request) -> web.Response:
    """Upload (or replace) an icon: a complete PNG of the slot's exact size."""
    principal = principal_of(request)
    slot = _slot(request)
    if request.content_type != "image/png":
        raise ProblemError("unsupported_media_type", "send the icon as image/png")
    png = await read_limited(request, MAX_ICON_BYTES, "an icon")
    info = await request.app[CONNECTORS].put_icon(principal, request.match_info["guid"], slot, png)
    return json_model(icon_out(info), headers={"ETag": f'"{info.sha256}"'})


async def get_icon(request: web.Request) -> web.Response:
    """Download an icon."""
    principal = principal_of(request)
    icon = await request.app[CONNECTORS].get_icon(
        principal, request.match_info["guid"], _slot(request)
    )
    return web.Response(
        body=icon.png, content_type="image/png", headers={"ETag": f'"{icon.info.sha256}"'}
    )


def register(app: web.Application) -> None:
    """Add the connector routes."""
    base = "/api/v1/connectors"
    app.router.add_post(base, create_connector)
    app.router.add_get(base, list_connectors)
    app.router.add_get(base + "/{guid}", get_connector)
    app.router.add_patch(base + "/{guid}", update_connector)
    app.router.add_delete(base + "/{guid}", delete_connector)
    app.router.add_put(base + "/{guid}/scripts/{kind}", put_script)
    app.router.add_get(base + "/{guid}/scripts/{kind}", get_script)
    app.router.add_put(base + "/{guid}/scripts/discovery/{param}", put_script)
    app.router.add_get(base + "/{guid}/scripts/discovery/{param}", get_script)
    app.router.add_put(base + "/{guid}/icons/{slot}", put_icon)
    app.router.add_get(base + "/{guid}/icons/{slot}", get_icon)
    app.router.add_post(base + "/{guid}/publish", publish_connector)
    app.router.add_get(base + "/{guid}/versions", list_versions)
    app.router.add_get(base + "/{guid}/versions/{number}", get_version)
