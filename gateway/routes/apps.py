"""App endpoints (SPEC 4.2): upload a design, place instances, map the caller's accounts."""

from __future__ import annotations

from datetime import datetime
from http import HTTPStatus
from typing import Any, Final
from urllib.parse import quote, urlencode

from aiohttp import web
from pydantic import BaseModel, Field, ValidationError

from gateway.apps.manifest import AppManifest, parse_manifest
from gateway.apps.service import AccountMapping, App, Instance
from gateway.apps.sessions import SessionInfo
from gateway.auth import principal_of
from gateway.keys import APP_SESSIONS, APPS, INSTANCE_ORIGINS, SETTINGS
from gateway.origin import EXCHANGE_PATH
from gateway.problems import ProblemError
from gateway.text import Identifier, Name
from gateway.wire import ParseModel, json_model, page_parameters, parse_body, validation_errors

ZIP_TYPES: Final = ("application/zip", "application/x-zip-compressed")


class InstanceCreate(ParseModel):
    """`POST /api/v1/apps/{id}/instances`."""

    name: Name | None = Field(default=None, description="Defaults to the app's name")


class AccountMappingSet(ParseModel):
    """`PUT /api/v1/apps/{id}/instances/{iid}/accounts/{alias}`."""

    account_id: Identifier


class AppOut(BaseModel):
    """An app design as the API shows it (its files are counted, not listed)."""

    id: str
    name: str
    version: str
    owner_id: str
    manifest: dict[str, Any]
    file_count: int
    size: int
    created_at: datetime


class AppPage(BaseModel):
    """A page of apps."""

    items: list[AppOut]
    next_cursor: str | None


class InstanceOut(BaseModel):
    """An app instance."""

    id: str
    app_id: str
    name: str
    created_by: str
    created_at: datetime


class InstancePage(BaseModel):
    """A page of app instances."""

    items: list[InstanceOut]
    next_cursor: str | None


class AccountMappingOut(BaseModel):
    """The caller's account for one alias of an instance."""

    alias: str
    provider_key: str
    account_id: str
    updated_at: datetime


class AccountMappingPage(BaseModel):
    """A page of the caller's mappings, by alias."""

    items: list[AccountMappingOut]
    next_cursor: str | None


class LaunchOut(BaseModel):
    """A one-time launch URL a browser opens without any header."""

    url: str


class SessionOut(BaseModel):
    """One of the caller's sessions on an instance (never its secret)."""

    id: str
    created_at: datetime
    expires_at: datetime


class SessionPage(BaseModel):
    """A page of the caller's sessions on an instance."""

    items: list[SessionOut]
    next_cursor: str | None


# The answers that lead a browser somewhere with a one-time secret in the URL.
_ONE_TIME: Final = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}


def _app_out(app: App) -> AppOut:
    return AppOut(
        id=app.id,
        name=app.name,
        version=app.version,
        owner_id=app.owner_id,
        manifest=app.manifest,
        file_count=app.file_count,
        size=app.size,
        created_at=app.created_at,
    )


def _instance_out(instance: Instance) -> InstanceOut:
    return InstanceOut(
        id=instance.id,
        app_id=instance.app_id,
        name=instance.name,
        created_by=instance.created_by,
        created_at=instance.created_at,
    )


def _mapping_out(mapping: AccountMapping) -> AccountMappingOut:
    return AccountMappingOut(
        alias=mapping.alias,
        provider_key=mapping.provider_key,
        account_id=mapping.account_id,
        updated_at=mapping.updated_at,
    )


def _zip_manifest(raw: bytes) -> AppManifest:
    """The zip's `manifest.json`, refused as a JSON body's manifest would be.

    Raises:
        ProblemError: `invalid_json` or `validation_failed`, as `parse_body` does.
    """
    try:
        return parse_manifest(raw)
    except ValidationError as exc:
        if any(error["type"] == "json_invalid" for error in exc.errors()):
            raise ProblemError("invalid_json", "manifest.json is not valid JSON") from None
        raise ProblemError(
            "validation_failed",
            "manifest.json does not match the schema",
            errors=validation_errors(exc),
        ) from None


async def create_app(request: web.Request) -> web.Response:
    """Upload an app: its manifest as JSON, or a zip of `manifest.json` and static files."""
    principal = principal_of(request)
    service = request.app[APPS]
    files: dict[str, bytes] = {}
    if request.content_type in ZIP_TYPES:
        bundle = await service.read_bundle(await request.read())
        manifest, files = _zip_manifest(bundle.manifest), bundle.files
    else:
        manifest = await parse_body(request, AppManifest)
    app = await service.create(principal, manifest, files)
    return json_model(
        _app_out(app), status=HTTPStatus.CREATED, headers={"Location": f"/api/v1/apps/{app.id}"}
    )


async def list_apps(request: web.Request) -> web.Response:
    """The caller's customer's apps."""
    limit, cursor = page_parameters(request)
    items, next_cursor = await request.app[APPS].list_apps(principal_of(request), limit, cursor)
    return json_model(AppPage(items=[_app_out(a) for a in items], next_cursor=next_cursor))


async def get_app(request: web.Request) -> web.Response:
    """One app."""
    app = await request.app[APPS].get(principal_of(request), request.match_info["id"])
    return json_model(_app_out(app))


async def delete_app(request: web.Request) -> web.Response:
    """Delete an app with its files, instances and mappings."""
    await request.app[APPS].delete(principal_of(request), request.match_info["id"])
    return web.Response(status=HTTPStatus.NO_CONTENT)


async def create_instance(request: web.Request) -> web.Response:
    """Place an instance of the app."""
    principal = principal_of(request)
    body = await parse_body(request, InstanceCreate)
    app_id = request.match_info["id"]
    instance = await request.app[APPS].create_instance(principal, app_id, body.name)
    return json_model(
        _instance_out(instance),
        status=HTTPStatus.CREATED,
        headers={"Location": f"/api/v1/apps/{app_id}/instances/{instance.id}"},
    )


async def list_instances(request: web.Request) -> web.Response:
    """The app's instances."""
    limit, cursor = page_parameters(request)
    items, next_cursor = await request.app[APPS].instances(
        principal_of(request), request.match_info["id"], limit, cursor
    )
    return json_model(
        InstancePage(items=[_instance_out(i) for i in items], next_cursor=next_cursor)
    )


async def map_account(request: web.Request) -> web.Response:
    """Set the caller's account for one alias of the instance."""
    principal = principal_of(request)
    body = await parse_body(request, AccountMappingSet)
    match = request.match_info
    mapping = await request.app[APPS].map_account(
        principal, match["id"], match["iid"], match["alias"], body.account_id
    )
    return json_model(_mapping_out(mapping))


async def list_mappings(request: web.Request) -> web.Response:
    """The caller's mappings in the instance."""
    limit, cursor = page_parameters(request)
    match = request.match_info
    items, next_cursor = await request.app[APPS].mappings(
        principal_of(request), match["id"], match["iid"], limit, cursor
    )
    return json_model(
        AccountMappingPage(items=[_mapping_out(m) for m in items], next_cursor=next_cursor)
    )


async def open_instance(request: web.Request) -> web.Response:
    """Send the browser to the instance's own origin with a one-time code (302).

    The caller is the bearer token's user, or the user a one-time launch `link` was
    issued to (a browser sends no header).
    """
    sessions = request.app[APP_SESSIONS]
    instance_id = request.match_info["iid"]
    link = request.query.get("link")
    if link is not None:
        code = await sessions.open_from_link(instance_id, link)
    else:
        code = await sessions.open(principal_of(request), instance_id)
    origin = request.app[INSTANCE_ORIGINS].origin(instance_id)
    location = f"{origin}{EXCHANGE_PATH}?{urlencode({'code': code})}"
    return web.Response(status=HTTPStatus.FOUND, headers={"Location": location, **_ONE_TIME})


async def launch_instance(request: web.Request) -> web.Response:
    """A one-time launch URL for the instance (60 s), for a browser."""
    principal = principal_of(request)
    match = request.match_info
    link = await request.app[APP_SESSIONS].issue_link(principal, match["id"], match["iid"])
    base = request.app[SETTINGS].public_base()
    url = f"{base}/apps/{quote(match['iid'], safe='')}/?{urlencode({'link': link})}"
    return json_model(LaunchOut(url=url), headers={"Cache-Control": "no-store"})


def _session_out(info: SessionInfo) -> SessionOut:
    return SessionOut(id=info.id, created_at=info.created_at, expires_at=info.expires_at)


async def list_sessions(request: web.Request) -> web.Response:
    """The caller's live sessions on the instance."""
    limit, cursor = page_parameters(request)
    match = request.match_info
    items, next_cursor = await request.app[APP_SESSIONS].sessions(
        principal_of(request), match["id"], match["iid"], limit, cursor
    )
    return json_model(SessionPage(items=[_session_out(i) for i in items], next_cursor=next_cursor))


async def revoke_sessions(request: web.Request) -> web.Response:
    """End all of the caller's sessions on the instance."""
    match = request.match_info
    await request.app[APP_SESSIONS].revoke(principal_of(request), match["id"], match["iid"], None)
    return web.Response(status=HTTPStatus.NO_CONTENT)


async def revoke_session(request: web.Request) -> web.Response:
    """End one of the caller's sessions on the instance."""
    match = request.match_info
    await request.app[APP_SESSIONS].revoke(
        principal_of(request), match["id"], match["iid"], match["sid"]
    )
    return web.Response(status=HTTPStatus.NO_CONTENT)


def register(app: web.Application) -> None:
    """Add the app routes."""
    app.router.add_post("/api/v1/apps", create_app)
    app.router.add_get("/api/v1/apps", list_apps)
    app.router.add_get("/api/v1/apps/{id}", get_app)
    app.router.add_delete("/api/v1/apps/{id}", delete_app)
    app.router.add_post("/api/v1/apps/{id}/instances", create_instance)
    app.router.add_get("/api/v1/apps/{id}/instances", list_instances)
    app.router.add_put("/api/v1/apps/{id}/instances/{iid}/accounts/{alias}", map_account)
    app.router.add_get("/api/v1/apps/{id}/instances/{iid}/accounts", list_mappings)
    app.router.add_post("/api/v1/apps/{id}/instances/{iid}/launch", launch_instance)
    app.router.add_get("/api/v1/apps/{id}/instances/{iid}/sessions", list_sessions)
    app.router.add_delete("/api/v1/apps/{id}/instances/{iid}/sessions", revoke_sessions)
    app.router.add_delete("/api/v1/apps/{id}/instances/{iid}/sessions/{sid}", revoke_session)
    app.router.add_get("/apps/{iid}/", open_instance)
