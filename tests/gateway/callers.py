"""Callers of the HTTP tests: users with tokens, and the problem assertion."""

from __future__ import annotations

from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from aiohttp.test_utils import TestClient
from aiohttp.web import Application, Request

from gateway.identity.principal import Role
from gateway.keys import IDENTITY
from gateway.problems import PROBLEM_CONTENT_TYPE

Client = TestClient[Request, Application]


@dataclass(frozen=True)
class Caller:
    """A user of the test and the headers that sign it in."""

    user_id: str
    customer_id: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


async def make_caller(client: Client, customer: str, email: str, role: Role) -> Caller:
    """A new customer and one user of it."""
    identity = client.app[IDENTITY]
    created = await identity.create_customer(customer)
    user = await identity.create_user(created.id, email, email, role)
    _, token = await identity.issue_token(user, "test")
    return Caller(user.id, created.id, token)


async def add_user(client: Client, of: Caller, email: str, role: Role) -> Caller:
    """Another user of `of`'s customer."""
    identity = client.app[IDENTITY]
    user = await identity.create_user(of.customer_id, email, email, role)
    _, token = await identity.issue_token(user, "test")
    return Caller(user.id, of.customer_id, token)


async def problem(response: Any, status: HTTPStatus, code: str) -> dict[str, Any]:
    """Assert a problem answer and return its body."""
    assert response.status == status, await response.text()
    assert response.content_type == PROBLEM_CONTENT_TYPE
    body: dict[str, Any] = await response.json(content_type=PROBLEM_CONTENT_TYPE)
    assert body["code"] == code
    assert body["type"] == f"urn:gateway:problem:{code}"
    return body
