"""Errors are problems (RFC 9457) with stable codes; unknown ones reveal nothing."""

from __future__ import annotations

from http import HTTPStatus

import pytest
from aiohttp import ClientResponse, web
from aiohttp.test_utils import TestClient
from pytest_aiohttp import AiohttpClient

from gateway.keys import METRICS
from gateway.metrics import Metrics
from gateway.middlewares import problems, request_context
from gateway.problems import PROBLEM_CONTENT_TYPE, PROBLEMS, ProblemError

SECRET = "hunter2-canary-9f8e7d"


async def _boom(request: web.Request) -> web.Response:
    secret = SECRET  # a local variable a traceback renderer must not show
    raise RuntimeError(f"database said no to {len(secret)} things")


async def _refused(request: web.Request) -> web.Response:
    raise ProblemError(
        "validation_failed",
        "the body is not valid",
        errors=[{"loc": ["name"], "msg": "field required"}],
    )


@pytest.fixture
async def bare(aiohttp_client: AiohttpClient) -> TestClient[web.Request, web.Application]:
    app = web.Application(middlewares=[request_context, problems])
    app[METRICS] = Metrics()
    app.router.add_get("/boom", _boom)
    app.router.add_get("/refused", _refused)
    app.router.add_post("/only-post", _refused)
    return await aiohttp_client(app)


async def _problem(response: ClientResponse) -> dict[str, object]:
    assert response.content_type == PROBLEM_CONTENT_TYPE
    body = await response.json(content_type=PROBLEM_CONTENT_TYPE)
    assert isinstance(body, dict)
    assert body["type"] == f"urn:gateway:problem:{body['code']}"
    return body


async def test_unknown_route_is_a_not_found_problem(
    bare: TestClient[web.Request, web.Application],
) -> None:
    response = await bare.get("/nowhere")
    assert response.status == HTTPStatus.NOT_FOUND
    assert (await _problem(response))["code"] == "not_found"


async def test_wrong_method_keeps_allow(bare: TestClient[web.Request, web.Application]) -> None:
    response = await bare.get("/only-post")
    assert response.status == HTTPStatus.METHOD_NOT_ALLOWED
    assert response.headers["Allow"] == "POST"
    assert (await _problem(response))["code"] == "method_not_allowed"


async def test_domain_problem_keeps_its_errors(
    bare: TestClient[web.Request, web.Application],
) -> None:
    response = await bare.get("/refused")
    assert response.status == HTTPStatus.UNPROCESSABLE_ENTITY
    body = await _problem(response)
    assert body["errors"] == [{"loc": ["name"], "msg": "field required"}]
    assert body["instance"] == "/refused"


async def test_unknown_exception_is_a_generic_500_with_the_request_id(
    bare: TestClient[web.Request, web.Application],
) -> None:
    response = await bare.get("/boom", headers={"X-Request-ID": "trace-me-123"})
    assert response.status == HTTPStatus.INTERNAL_SERVER_ERROR
    body = await _problem(response)
    assert body["code"] == "internal_error"
    assert body["request_id"] == "trace-me-123"
    assert response.headers["X-Request-ID"] == "trace-me-123"
    assert "database" not in str(body)


async def test_request_ids_are_generated_when_missing_or_malformed(
    bare: TestClient[web.Request, web.Application],
) -> None:
    generated = await bare.get("/nowhere", headers={"X-Request-ID": "bad id\twith spaces"})
    assert len(generated.headers["X-Request-ID"]) == 32


def test_every_problem_code_is_well_formed() -> None:
    for code, (status, title) in PROBLEMS.items():
        assert code.isidentifier()
        assert code.islower()
        assert 400 <= status < 600
        assert title
    with pytest.raises(ValueError, match="unknown problem code"):
        ProblemError("no_such_code", "x")
