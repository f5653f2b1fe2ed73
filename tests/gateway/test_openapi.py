"""`openapi.yaml` describes every endpoint exactly as the server behaves."""

from __future__ import annotations

from http import HTTPStatus

import yaml
from aiohttp.test_utils import TestClient
from aiohttp.web import Application, Request

from tests.openapi_check import SPEC_PATH, Conformance

HTTP_METHODS = {"get", "put", "post", "delete", "patch", "options", "head"}


def documented() -> set[tuple[str, str]]:
    document = yaml.safe_load(SPEC_PATH.read_text())
    return {
        (method.upper(), path)
        for path, item in document["paths"].items()
        for method in item
        if method in HTTP_METHODS
    }


async def test_every_route_is_documented_and_every_documented_route_exists(
    client: TestClient[Request, Application],
) -> None:
    registered = {
        (route.method, route.resource.canonical)
        for route in client.app.router.routes()
        if route.resource is not None and route.method != "HEAD"
    }
    assert registered == documented()


async def test_the_document_is_served(client: TestClient[Request, Application]) -> None:
    response = await client.get("/openapi.yaml")
    assert response.status == HTTPStatus.OK
    assert await response.read() == SPEC_PATH.read_bytes()


async def test_responses_are_checked(
    client: TestClient[Request, Application], conformance: Conformance
) -> None:
    for path in ("/healthz", "/readyz", "/metrics", "/openapi.yaml"):
        assert (await client.get(path)).status == HTTPStatus.OK
    assert conformance.checked == 4


async def test_public_routes_ignore_a_bad_token(
    client: TestClient[Request, Application], conformance: Conformance
) -> None:
    # The document and the OAuth callback need no caller: a stale token a browser or a tool
    # sends along changes nothing (the callback's own answer: an unknown state).
    bad = {"Authorization": "Bearer not-a-token"}
    assert (await client.get("/openapi.yaml", headers=bad)).status == HTTPStatus.OK
    callback = await client.get(
        "/api/v1/oauth/callback?state=s&code=c",
        headers={**bad, "Accept": "application/json"},
    )
    assert callback.status == HTTPStatus.BAD_REQUEST
    assert (await callback.json(content_type=None))["code"] == "bad_request"
    assert conformance.errors == []
