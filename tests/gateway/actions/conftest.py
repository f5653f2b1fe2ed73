"""Fixtures of the action tests: a platform admin, an echoing upstream, actions in each scope,
apps with an account alias, and the calls of the process endpoint."""

from __future__ import annotations

from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from typing import Any, Final

import pytest
from aiohttp import ClientResponse, web
from pytest_aiohttp import AiohttpServer

from gateway.identity.principal import Role
from gateway.settings import Settings
from tests.gateway.callers import Caller, Client, make_caller
from tests.gateway.connectors.conftest import create_connector, put_script

# Calls the upstream with the account's key and answers what it said (JSON, so the first
# cell parses), and the parameters it was given.
ECHO_PROCESS: Final = """
httprequest.addHeader('X-Api-Key', metadata.account.apikey);
var answer = httprequest.post('http://{host}/echo', JSON.stringify(metadata.parameters));
datagrid.addColumn('answer', datagrid.DATA_TYPE_STRING);
datagrid.addCell(answer);
datagrid.endRow();
"""


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """One worker; scripts may reach the fakes on loopback."""
    return Settings(data_dir=tmp_path / "data", workers=1, egress_allow_private=True)


@pytest.fixture
async def platform(client: Client) -> Caller:
    """A platform admin of a third customer, `initech`."""
    return await make_caller(client, "initech", "pat@initech.test", Role.PLATFORM_ADMIN)


@dataclass
class Echo:
    """A fake API on 127.0.0.1: `/echo` answers `{"n", "parameters"}` and notes the key."""

    port: int
    keys: list[str] = field(default_factory=list)

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"


@pytest.fixture
async def echo(aiohttp_server: AiohttpServer) -> Echo:
    """The started fake API."""
    keys: list[str] = []

    async def answer(request: web.Request) -> web.Response:
        keys.append(request.headers.get("X-Api-Key", ""))
        return web.json_response({"n": len(keys), "parameters": await request.json()})

    app = web.Application()
    app.router.add_post("/echo", answer)
    server = await aiohttp_server(app, host="127.0.0.1")
    assert server.port is not None
    return Echo(server.port, keys)


async def publish(client: Client, caller: Caller, guid: str) -> dict[str, Any]:
    """Publish the connector's draft as its next version."""
    response = await client.post(f"/api/v1/connectors/{guid}/publish", headers=caller.headers)
    assert response.status == HTTPStatus.CREATED, await response.text()
    body: dict[str, Any] = await response.json()
    assert response.headers["Location"] == f"/api/v1/connectors/{guid}/versions/{body['number']}"
    return body


async def set_scope(
    client: Client, caller: Caller, guid: str, scope: str, reason: str = "because"
) -> Any:
    """`PUT /api/v1/admin/actions/{guid}/scope`."""
    return await client.put(
        f"/api/v1/admin/actions/{guid}/scope",
        headers=caller.headers,
        json={"scope": scope, "reason": reason},
    )


async def make_action(
    client: Client,
    owner: Caller,
    process: str,
    *,
    hosts: tuple[str, ...] = (),
    key: str = "crm",
    **changes: Any,
) -> str:
    """An apikey action of `owner` (personal, its draft) with the given process script."""
    changes.setdefault("auth", {"method": "apikey"})
    created = await create_connector(
        client, owner, kind="action", key=key, allowed_hosts=list(hosts), **changes
    )
    guid: str = created["guid"]
    await put_script(client, owner, guid, "auth", "auth.authenticationSuccess();")
    await put_script(client, owner, guid, "process", process)
    return guid


async def place_app(
    client: Client, caller: Caller, aliases: dict[str, str], instances: int = 1
) -> tuple[str, list[str]]:
    """An app of `caller` declaring `aliases` ({alias: provider key}) and its instances."""
    manifest = {
        "name": "Deal desk",
        "version": "1.0.0",
        "accountMapping": [{"alias": a, "dataProviderKey": k} for a, k in aliases.items()],
    }
    response = await client.post("/api/v1/apps", headers=caller.headers, json=manifest)
    assert response.status == HTTPStatus.CREATED, await response.text()
    app_id: str = (await response.json())["id"]
    placed = []
    for _ in range(instances):
        response = await client.post(
            f"/api/v1/apps/{app_id}/instances", headers=caller.headers, json={}
        )
        assert response.status == HTTPStatus.CREATED, await response.text()
        placed.append((await response.json())["id"])
    return app_id, placed


async def map_alias(
    client: Client, caller: Caller, app_id: str, instance_id: str, alias: str, account_id: str
) -> None:
    """Map `caller`'s account to `alias` in the instance."""
    response = await client.put(
        f"/api/v1/apps/{app_id}/instances/{instance_id}/accounts/{alias}",
        headers=caller.headers,
        json={"account_id": account_id},
    )
    assert response.status == HTTPStatus.OK, await response.text()


async def process(
    client: Client,
    caller: Caller,
    guid: str,
    body: Any = None,
    *,
    instance: str | None = None,
    headers: dict[str, str] | None = None,
    **query: str,
) -> ClientResponse:
    """`POST /domo/actions/v1/{guid}/process` as `caller` (with `X-App-Instance`)."""
    sent = {**caller.headers, **(headers or {})}
    if instance is not None:
        sent["X-App-Instance"] = instance
    return await client.post(
        f"/domo/actions/v1/{guid}/process",
        params=query,
        json={} if body is None else body,
        headers=sent,
    )


async def run_record(client: Client, caller: Caller, response: ClientResponse) -> dict[str, Any]:
    """The stored run named by the answer's `X-Run-Id`."""
    stored = await client.get(
        f"/api/v1/runs/{response.headers['X-Run-Id']}", headers=caller.headers
    )
    assert stored.status == HTTPStatus.OK, await stored.text()
    record: dict[str, Any] = await stored.json()
    return record
