"""What an account's auth check answers (SPEC 4.3): only a reported failure is a rejection.

Every upstream is real and on 127.0.0.1: a closed port, a server that resets or stalls, a
TLS server nobody trusts. The unresolvable name is answered by a resolver that fails, so no
test asks real DNS anything.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from http import HTTPStatus
from pathlib import Path
from typing import Any

import pytest
from pytest_aiohttp import AiohttpClient
from sqlalchemy import select

import gateway.app
from examples.tls import make_local_ca
from gateway.app import create_app
from gateway.connectors.tables import runs
from gateway.egress import AddressPolicy, EgressClient
from gateway.identity.principal import Role
from gateway.keys import ENGINE, RUNS
from gateway.settings import Settings
from tests.gateway.callers import Caller, Client, make_caller, problem
from tests.gateway.connectors.conftest import Upstream, create_connector, put_script
from tests.gateway.egress.fakes import FakeResolver
from tests.openapi_check import Conformance, watch

CHECK = """
httprequest.addHeader('X-Api-Key', metadata.account.apikey);
var body = httprequest.get('{url}');
if (httprequest.getStatusCode() == 200) {{ auth.authenticationSuccess(); }}
else {{ auth.authenticationFailed('That API key is not valid.'); }}
"""
GOOD_KEY = "k-123-secret"

Serve = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@pytest.fixture
async def serve() -> AsyncIterator[Callable[..., Awaitable[int]]]:
    """Start raw TCP servers on 127.0.0.1 (port 0); return their ports; close them after."""
    servers: list[asyncio.Server] = []
    writers: list[asyncio.StreamWriter] = []

    async def start(handler: Serve, **options: Any) -> int:
        async def serving(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writers.append(writer)
            await handler(reader, writer)

        server = await asyncio.start_server(serving, "127.0.0.1", 0, **options)
        servers.append(server)
        port: int = server.sockets[0].getsockname()[1]
        return port

    yield start
    for server in servers:
        server.close()
    for writer in writers:
        writer.close()
    for server in servers:
        await server.wait_closed()


def _closed_port() -> int:
    """A port nothing listens on: bound, then released (connecting to it is refused)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


async def _reset(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.readline()
    # SO_LINGER 0: close with a RST instead of a FIN, as a crashing upstream would.
    writer.get_extra_info("socket").setsockopt(
        socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
    )
    writer.close()


async def _stall(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.read()  # reads until the client goes away, never answers


async def _connector(
    client: Client, owner: Caller, url: str, allowed: list[str], **changes: Any
) -> dict[str, Any]:
    connector = await create_connector(
        client, owner, key="whoami", auth={"method": "apikey"}, allowed_hosts=allowed, **changes
    )
    await put_script(client, owner, connector["guid"], "auth", CHECK.format(url=url))
    return connector


async def _create(client: Client, caller: Caller, key: str = GOOD_KEY) -> Any:
    body = {"connector_key": "whoami", "name": "My key", "credentials": {"apikey": key}}
    return await client.post("/api/v1/accounts", headers=caller.headers, json=body)


async def _refused(
    client: Client, caller: Caller, status: HTTPStatus, code: str, key: str = GOOD_KEY
) -> str:
    """Assert the problem of a create, its stored run, and that nothing was stored."""
    body = await problem(await _create(client, caller, key), status, code)
    await client.app[RUNS].flush_runs()
    async with client.app[ENGINE].connect() as connection:
        run = (await connection.execute(select(runs).where(runs.c.id == body["run_id"]))).one()
    assert (run.kind, run.user_id) == ("auth", caller.user_id)
    assert key not in str(body)
    listed = await (await client.get("/api/v1/accounts", headers=caller.headers)).json()
    assert listed["items"] == []
    detail: str = body["detail"]
    return detail


async def test_a_reported_failure_is_a_rejection_with_the_scripts_message(
    client: Client, owner: Caller, upstream: Upstream
) -> None:
    await _connector(client, owner, f"http://{upstream.host}/whoami", [upstream.host])
    detail = await _refused(
        client, owner, HTTPStatus.UNPROCESSABLE_ENTITY, "credentials_rejected", key="wrong-key"
    )
    assert detail == "That API key is not valid."


async def test_a_closed_port_is_upstream_unavailable(client: Client, owner: Caller) -> None:
    port = _closed_port()
    await _connector(client, owner, f"http://127.0.0.1:{port}/", [f"127.0.0.1:{port}"])
    detail = await _refused(client, owner, HTTPStatus.BAD_GATEWAY, "upstream_unavailable")
    assert detail.startswith(f"cannot connect to host 127.0.0.1:{port}")


async def test_a_reset_connection_is_upstream_unavailable(
    client: Client, owner: Caller, serve: Callable[..., Awaitable[int]]
) -> None:
    port = await serve(_reset)
    await _connector(client, owner, f"http://127.0.0.1:{port}/", [f"127.0.0.1:{port}"])
    detail = await _refused(client, owner, HTTPStatus.BAD_GATEWAY, "upstream_unavailable")
    assert detail.startswith("connection to host 127.0.0.1 failed")


async def test_a_stalled_upstream_cut_off_by_the_deadline_is_upstream_unavailable(
    client: Client, owner: Caller, serve: Callable[..., Awaitable[int]]
) -> None:
    port = await serve(_stall)
    await _connector(
        client,
        owner,
        f"http://127.0.0.1:{port}/",
        [f"127.0.0.1:{port}"],
        limits={"wall_time_s": 1},
    )
    detail = await _refused(client, owner, HTTPStatus.BAD_GATEWAY, "upstream_unavailable")
    assert detail == (
        "the script did not finish within its deadline of 1 s, "
        "waiting for an answer from host 127.0.0.1"
    )


async def test_an_untrusted_tls_certificate_is_upstream_unavailable(
    client: Client, owner: Caller, serve: Callable[..., Awaitable[int]], tmp_path: Path
) -> None:
    ca = make_local_ca(tmp_path, ["localhost"])  # a CA the gateway does not trust
    port = await serve(_stall, ssl=ca.server_context)
    await _connector(client, owner, f"https://127.0.0.1:{port}/", [f"127.0.0.1:{port}"])
    detail = await _refused(client, owner, HTTPStatus.BAD_GATEWAY, "upstream_unavailable")
    assert detail == "the TLS certificate of host 127.0.0.1 is not trusted"


async def test_an_undeclared_host_is_egress_refused(
    client: Client, owner: Caller, upstream: Upstream
) -> None:
    await _connector(client, owner, f"http://{upstream.host}/whoami", ["api.example.com"])
    detail = await _refused(client, owner, HTTPStatus.UNPROCESSABLE_ENTITY, "egress_refused")
    assert detail == "host 127.0.0.1 is not in the connector's allowed_hosts"
    assert upstream.seen == []


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("throw new Error('no ' + metadata.account.apikey);", "Error: no [redacted]"),
        ("var x = 1;", "the auth script called neither"),
    ],
)
async def test_any_other_error_is_script_failed(
    client: Client, owner: Caller, source: str, message: str
) -> None:
    connector = await create_connector(
        client, owner, key="whoami", auth={"method": "apikey"}, allowed_hosts=[]
    )
    await put_script(client, owner, connector["guid"], "auth", source)
    detail = await _refused(client, owner, HTTPStatus.UNPROCESSABLE_ENTITY, "script_failed")
    assert detail.startswith(message)


async def test_new_credentials_get_the_same_answers_and_keep_the_old_ones(
    client: Client, owner: Caller, upstream: Upstream, serve: Callable[..., Awaitable[int]]
) -> None:
    port = await serve(_reset)
    allowed = [upstream.host, f"127.0.0.1:{port}"]
    connector = await _connector(client, owner, f"http://{upstream.host}/whoami", allowed)
    created = await _create(client, owner)
    assert created.status == HTTPStatus.CREATED, await created.text()
    path = f"/api/v1/accounts/{(await created.json())['id']}"
    await put_script(
        client, owner, connector["guid"], "auth", CHECK.format(url=f"http://127.0.0.1:{port}/")
    )
    body = await problem(
        await client.patch(path, headers=owner.headers, json={"credentials": {"apikey": "new"}}),
        HTTPStatus.BAD_GATEWAY,
        "upstream_unavailable",
    )
    assert body["run_id"]
    account = await (await client.get(path, headers=owner.headers)).json()
    assert account["updated_at"] == (await created.json())["updated_at"]


async def test_an_unresolvable_name_is_upstream_unavailable(
    aiohttp_client: AiohttpClient,
    settings: Settings,
    conformance: Conformance,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A resolver that knows no name stands in for DNS: nothing is asked of the network.
    resolver = FakeResolver({})

    def failing_dns(settings: Settings) -> EgressClient:
        return EgressClient(AddressPolicy(allow_private=True), resolver=resolver)

    monkeypatch.setattr(gateway.app, "egress_client_for", failing_dns)
    client = await aiohttp_client(watch(create_app(settings), conformance))
    owner = await make_caller(client, "acme", "olga@acme.test", Role.MEMBER)
    await _connector(client, owner, "https://developer.domo.com/samplecrm", ["developer.domo.com"])
    detail = await _refused(client, owner, HTTPStatus.BAD_GATEWAY, "upstream_unavailable")
    assert detail == "host developer.domo.com could not be resolved"
    assert resolver.calls == [("developer.domo.com", 443)]
    assert conformance.errors == []


async def test_every_auth_check_is_counted_in_the_run_metrics(
    client: Client, owner: Caller, upstream: Upstream
) -> None:
    await _connector(client, owner, f"http://{upstream.host}/whoami", [upstream.host])
    assert (await _create(client, owner)).status == HTTPStatus.CREATED
    assert (await _create(client, owner, "wrong-key")).status == HTTPStatus.UNPROCESSABLE_ENTITY
    metrics = await (await client.get("/metrics")).text()
    assert 'gateway_runs_total{kind="auth",status="success"} 1.0' in metrics
    assert 'gateway_runs_total{kind="auth",status="failed"} 1.0' in metrics
    assert 'gateway_run_duration_seconds_count{kind="auth"} 2.0' in metrics
