"""Fixtures of the app tests: connectors to name in manifests, accounts to map, and the
action tests' echoing upstream (for apps that call actions)."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientSession
from aiohttp.web import Application
from pytest_aiohttp import AiohttpClient
from sqlalchemy import update

from gateway.accounts.service import Account, Provider
from gateway.connectors.tables import connectors
from gateway.identity.principal import Principal, Role
from gateway.keys import ACCOUNTS, ENGINE
from gateway.settings import Settings
from tests.gateway.actions.conftest import echo  # noqa: F401 - a fixture, registered by import
from tests.gateway.apps.browser import Chromium, headless_chromium, new_browser
from tests.gateway.callers import Caller, Client
from tests.gateway.connectors.conftest import create_connector
from tests.openapi_check import Conformance


@pytest.fixture
async def providers(client: Client, owner: Caller, outsider: Caller) -> dict[str, str]:
    """`crm` and `erp` of acme, and `world` of globex made global."""
    await create_connector(client, owner, key="crm", name="CRM")
    await create_connector(client, owner, key="erp", name="ERP")
    world = await create_connector(client, outsider, key="world", name="World")
    await create_connector(client, outsider, key="hidden", name="Hidden")
    async with client.app[ENGINE].begin() as connection:
        await connection.execute(
            update(connectors).where(connectors.c.guid == world["guid"]).values(scope="global")
        )
    return {"crm": "crm", "erp": "erp", "world": "world"}


async def _accept(values: dict[str, str]) -> tuple[bool, str | None]:
    return True, None


async def make_account(client: Client, caller: Caller, key: str, name: str = "acct") -> Account:
    """An apikey account of `caller` for data provider `key` (the auth check accepts it)."""
    principal = Principal(caller.user_id, caller.customer_id, Role.MEMBER)
    return await client.app[ACCOUNTS].create(
        principal, Provider(key, "apikey"), name, {"apikey": "k-" + name}, _accept
    )


def manifest(**changes: Any) -> dict[str, Any]:
    """A manifest with two account aliases, `sales` (crm) and `books` (erp)."""
    document: dict[str, Any] = {
        "name": "Sales board",
        "version": "1.0.0",
        "accountMapping": [
            {"alias": "sales", "dataProviderKey": "crm"},
            {"alias": "books", "dataProviderType": "erp"},
        ],
    }
    document.update(changes)
    return document


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    """The gateway's listening socket, bound first: the instance origins name its port."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    yield sock
    sock.close()


@pytest.fixture
def settings(tmp_path: Path, listener: socket.socket) -> Settings:
    """The gateway's settings on the listener's port (origins follow it by default)."""
    return Settings(data_dir=tmp_path / "data", workers=1, port=listener.getsockname()[1])


@pytest.fixture
async def client(
    app: Application,
    aiohttp_client: AiohttpClient,
    conformance: Conformance,
    listener: socket.socket,
) -> AsyncIterator[Client]:
    """A client of the app served on the listener; fails the test on any answer off the spec."""
    yield await aiohttp_client(app, server_kwargs={"socket_factory": lambda *_: listener})
    assert conformance.errors == []


@pytest.fixture
async def browser() -> AsyncIterator[ClientSession]:
    """A browser with a cookie jar that reaches every `*.apps.localhost` on loopback."""
    async with new_browser() as session:
        yield session


@pytest.fixture
async def chromium(tmp_path: Path) -> AsyncIterator[Chromium]:
    """A tab of a fresh headless Chromium (one start per test; see `browser.py`)."""
    async with headless_chromium(tmp_path / "profile") as tab:
        yield tab
