"""The service skeleton: the app factory and `gateway serve`."""

from __future__ import annotations

import asyncio
import socket
import sys
from http import HTTPStatus
from pathlib import Path

import aiohttp
from aiohttp.test_utils import TestClient
from aiohttp.web import Application, Request
from pytest_aiohttp import AiohttpClient

from gateway.app import create_app
from gateway.identity.principal import Principal, Role
from gateway.keys import POOL, RUNS
from gateway.settings import Settings
from gateway.store import create_engine
from gateway.store.tables import metadata
from tests.gateway.callers import make_caller
from tests.gateway.connectors.test_run_writer import make_run


async def test_healthz_and_pool_lifecycle(aiohttp_client: AiohttpClient, tmp_path: Path) -> None:
    app = create_app(Settings(data_dir=tmp_path, workers=1))
    client = await aiohttp_client(app)
    response = await client.get("/healthz")
    assert response.status == HTTPStatus.OK
    assert await response.json() == {"status": "ok"}
    assert app[POOL].stats().idle == 1


async def test_a_clean_shutdown_writes_every_queued_run(
    aiohttp_client: AiohttpClient, tmp_path: Path
) -> None:
    settings = Settings(
        data_dir=tmp_path, workers=1, run_batch_interval_ms=1000, run_batch_max=1000
    )
    app = create_app(settings)
    client = await aiohttp_client(app)
    caller = await make_caller(client, "acme", "olga@acme.test", Role.MEMBER)
    made = [make_run(Principal(caller.user_id, caller.customer_id, Role.MEMBER)) for _ in range(3)]
    for run in made:
        await app[RUNS]._store(run)
    await client.close()  # the cleanup flushes the writer before the engine goes away
    engine = create_engine(f"sqlite:///{tmp_path / 'gateway.db'}")
    async with engine.connect() as connection:
        stored = (await connection.execute(metadata.tables["runs"].select())).all()
    await engine.dispose()
    assert sorted(row.id for row in stored) == sorted(run.id for run in made)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


async def test_gateway_serve_starts_with_no_configuration(tmp_path: Path) -> None:
    port = _free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway",
        "serve",
        "--port",
        str(port),
        "--data-dir",
        str(tmp_path / "data"),
        env={"PATH": "/usr/bin:/bin", "GATEWAY_WORKERS": "1"},
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with aiohttp.ClientSession() as session:
            for _ in range(100):
                try:
                    async with session.get(f"http://127.0.0.1:{port}/healthz") as response:
                        assert response.status == HTTPStatus.OK
                        break
                except aiohttp.ClientConnectionError:
                    await asyncio.sleep(0.1)
            else:
                raise AssertionError("gateway serve did not answer /healthz")
        assert (tmp_path / "data").is_dir()
    finally:
        process.terminate()
        await asyncio.wait_for(process.wait(), timeout=10)


async def test_bad_setting_stops_serve_with_exit_2(tmp_path: Path) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway",
        "serve",
        "--data-dir",
        str(tmp_path),
        env={"PATH": "/usr/bin:/bin", "GATEWAY_PORT": "eighty"},
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    _, stderr = await asyncio.wait_for(process.communicate(), timeout=30)
    assert process.returncode == 2
    assert b"GATEWAY_PORT" in stderr


async def test_metrics_count_requests_by_route_and_workers(
    client: TestClient[Request, Application],
) -> None:
    await client.get("/healthz")
    await client.get("/no/such/path")
    response = await client.get("/metrics")
    assert response.status == HTTPStatus.OK
    text = await response.text()
    assert 'gateway_http_requests_total{method="GET",route="/healthz",status="200"} 1.0' in text
    assert 'gateway_http_requests_total{method="GET",route="unmatched",status="404"} 1.0' in text
    assert 'gateway_workers{state="idle"} 1.0' in text
    assert "gateway_run_queue_waiting 0.0" in text
    assert "gateway_http_request_duration_seconds_bucket" in text


async def test_readyz_reports_the_workers(client: TestClient[Request, Application]) -> None:
    response = await client.get("/readyz")
    assert response.status == HTTPStatus.OK
    assert await response.json() == {"status": "ready", "workers": 1}
