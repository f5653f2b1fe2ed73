"""Fixtures for the HTTP service: the real app factory, its client, and API conformance."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient
from aiohttp.web import Application, Request
from pytest_aiohttp import AiohttpClient

from gateway.app import create_app
from gateway.identity.principal import Role
from gateway.settings import Settings
from tests.gateway.callers import Caller, Client, add_user, make_caller
from tests.openapi_check import Conformance, watch


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings for one test: a data folder of its own, one script worker."""
    return Settings(data_dir=tmp_path / "data", workers=1)


@pytest.fixture
def conformance() -> Conformance:
    """Collects every response that does not match openapi.yaml."""
    return Conformance()


@pytest.fixture
def app(settings: Settings, conformance: Conformance) -> Application:
    """The real application, with every response checked against openapi.yaml."""
    return watch(create_app(settings), conformance)


@pytest.fixture
async def client(
    app: Application, aiohttp_client: AiohttpClient, conformance: Conformance
) -> AsyncIterator[TestClient[Request, Application]]:
    """A client of the app over loopback TCP; fails the test on any response off the spec."""
    yield await aiohttp_client(app)
    assert conformance.errors == []


@pytest.fixture
async def owner(client: Client) -> Caller:
    """A member of `acme` who creates connectors and accounts."""
    return await make_caller(client, "acme", "olga@acme.test", Role.MEMBER)


@pytest.fixture
async def colleague(client: Client, owner: Caller) -> Caller:
    """Another member of `acme`."""
    return await add_user(client, owner, "carl@acme.test", Role.MEMBER)


@pytest.fixture
async def admin(client: Client, owner: Caller) -> Caller:
    """A customer admin of `acme`."""
    return await add_user(client, owner, "ada@acme.test", Role.ADMIN)


@pytest.fixture
async def outsider(client: Client) -> Caller:
    """A customer admin of another customer, `globex`."""
    return await make_caller(client, "globex", "gina@globex.test", Role.ADMIN)
