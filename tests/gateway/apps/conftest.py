"""Fixtures of the app tests: connectors to name in manifests, accounts to map."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import update

from gateway.accounts.service import Account, Provider
from gateway.connectors.tables import connectors
from gateway.identity.principal import Principal, Role
from gateway.keys import ACCOUNTS, ENGINE
from tests.gateway.callers import Caller, Client
from tests.gateway.connectors.conftest import create_connector


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
