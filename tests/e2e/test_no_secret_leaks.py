"""THREATS S1 and S3 end to end: canary secrets seeded through the real entry point never
show up in a response, a stored run, a log line, the metrics or the database file.

The canary scripts put the account's password into every string a run returns: logs, the
error message, a URL, column names, a string `datagrid.error` code, the discovery options
and tree."""

from __future__ import annotations

import asyncio
import base64
import json
import socket
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

PASSWORD = "canary-pass-Q7v2Lm9x"
CLIENT_SECRET = "canary-client-K4d8Wq1z"
TOKEN_SECRET = "canary-token-P3n6Rt0y"
CANARIES = (PASSWORD, CLIENT_SECRET, TOKEN_SECRET)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class Gateway:
    """A `gateway serve` process and everything it said."""

    url: str
    data: Path
    process: asyncio.subprocess.Process
    bodies: list[str] = field(default_factory=list)

    async def call(
        self,
        session: aiohttp.ClientSession,
        method: str,
        path: str,
        token: str | None = None,
        **kwargs: Any,
    ) -> tuple[int, Any]:
        headers = dict(kwargs.pop("headers", {}))
        if token:
            headers["Authorization"] = f"Bearer {token}"
        async with session.request(method, self.url + path, headers=headers, **kwargs) as resp:
            text = await resp.text()
            self.bodies.append(text)
            return resp.status, json.loads(text) if text and "json" in resp.content_type else text


async def _upstream() -> TestServer:
    async def login(request: web.Request) -> web.Response:
        expected = "Basic " + base64.b64encode(f"ann:{PASSWORD}".encode()).decode()
        if request.headers.get("Authorization") != expected:
            return web.Response(status=401, text="no")
        # An upstream that echoes a secret back must not leak it through the gateway either.
        return web.json_response([{"id": 1, "echo": f"token={TOKEN_SECRET}"}])

    app = web.Application()
    app.router.add_get("/login", login)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    return server


async def _gateway_cli(*args: str, env: dict[str, str]) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway",
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


@pytest.fixture
async def gateway(tmp_path: Path) -> AsyncIterator[Gateway]:
    data = tmp_path / "data"
    port = _free_port()
    env = {
        "PATH": "/usr/bin:/bin",
        "GATEWAY_WORKERS": "1",
        "GATEWAY_EGRESS_ALLOW_PRIVATE": "true",
        "GATEWAY_DATA_DIR": str(data),
        "GATEWAY_PORT": str(port),
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway",
        "serve",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    gw = Gateway(f"http://127.0.0.1:{port}", data, process)
    async with aiohttp.ClientSession() as session:
        for _ in range(200):
            try:
                async with session.get(gw.url + "/healthz") as response:
                    if response.status == 200:
                        break
            except aiohttp.ClientConnectionError:
                await asyncio.sleep(0.05)
        else:
            process.kill()
            raise AssertionError("gateway serve did not start")
    yield gw
    if process.returncode is None:
        process.terminate()
        await asyncio.wait_for(process.wait(), timeout=10)


async def test_s1_s3_canaries_never_leak(gateway: Gateway) -> None:
    upstream = await _upstream()
    try:
        env = {"PATH": "/usr/bin:/bin", "GATEWAY_DATA_DIR": str(gateway.data)}
        code, out, _ = await _gateway_cli(
            "admin", "bootstrap", "--customer", "acme", "--email", "root@acme.test", env=env
        )
        assert code == 0
        token = out.strip().splitlines()[-1]
        host = f"127.0.0.1:{upstream.port}"
        async with aiohttp.ClientSession() as session:
            status, connector = await gateway.call(
                session,
                "POST",
                "/api/v1/connectors",
                token,
                json={
                    "kind": "connector",
                    "name": "CRM",
                    "key": "crm",
                    "auth": {"method": "basic"},
                    "allowed_hosts": [host],
                    "reports": ["All"],
                    "parameters": [{"name": "Region", "type": "discovery"}],
                },
            )
            assert status == 201
            guid = connector["guid"]
            status, _ = await gateway.call(
                session,
                "POST",
                "/api/v1/connectors",
                token,
                json={
                    "kind": "action",
                    "name": "OAuth CRM",
                    "key": "oauthcrm",
                    "auth": {
                        "method": "oauth2",
                        "authorization_url": "https://id.test/a",
                        "token_url": "https://id.test/t",
                        "client_id": "cid",
                        "client_secret": CLIENT_SECRET,
                    },
                },
            )
            assert status == 201
            auth = (
                f"var r = httprequest.get('http://{host}/login');"
                "DOMO.log('checking ' + metadata.account.password);"
                "if (httprequest.getStatusCode() == 200) auth.authenticationSuccess();"
                "else auth.authenticationFailed('bad password ' + metadata.account.password);"
            )
            process = (
                "console.log(metadata.account.password, DOMO.b64EncodeUnicode("
                "metadata.account.password));"
                f"httprequest.get('http://{host}/login?token=' + metadata.account.password);"
                "throw new Error('failing on ' + metadata.account.password);"
            )
            for kind, source in (("auth", auth), ("process", process)):
                status, _ = await gateway.call(
                    session,
                    "PUT",
                    f"/api/v1/connectors/{guid}/scripts/{kind}",
                    token,
                    data=source.encode(),
                    headers={"Content-Type": "application/javascript"},
                )
            basic = base64.b64encode(f"ann:{PASSWORD}".encode()).decode()
            auth_with_header = auth.replace(
                "var r =", f"httprequest.addHeader('Authorization', 'Basic {basic}'); var r ="
            )
            await gateway.call(
                session,
                "PUT",
                f"/api/v1/connectors/{guid}/scripts/auth",
                token,
                data=auth_with_header.encode(),
                headers={"Content-Type": "application/javascript"},
            )
            status, _ = await gateway.call(
                session,
                "POST",
                "/api/v1/accounts",
                token,
                json={
                    "connector_key": "crm",
                    "name": "wrong",
                    "credentials": {"username": "ann", "password": PASSWORD + "x"},
                },
            )
            assert status in (201, 422)
            status, account = await gateway.call(
                session,
                "POST",
                "/api/v1/accounts",
                token,
                json={
                    "connector_key": "crm",
                    "name": "mine",
                    "credentials": {"username": "ann", "password": PASSWORD},
                },
            )
            assert status == 201, account
            status, run = await gateway.call(
                session,
                "POST",
                f"/api/v1/connectors/{guid}/runs",
                token,
                json={"mode": "process", "account_id": account["id"], "report": "All"},
            )
            assert status == 200
            assert run["status"] == "error"
            assert run["logs"] == ["[redacted] [redacted]"], run["error"]
            assert run["error"]["message"] == "Error: failing on [redacted]"
            run_ids = [run["run_id"]]
            shaped = {
                "process": (
                    "datagrid.addColumn('col_' + metadata.account.password);"
                    "datagrid.addCell(metadata.account.password); datagrid.endRow();"
                ),
                "discovery/Region": (
                    "var pw = metadata.account.password; discovery.addOption(pw, 'label ' + pw);"
                    "var n = discovery.addNode(discovery.tree, 'node ' + pw);"
                    "discovery.addLeaf(n, 'leaf ' + pw); discovery.publishTree();"
                ),
            }
            failing = "datagrid.error('code_' + metadata.account.password, 'failed');"
            for target, source, mode in (
                ("process", shaped["process"], "process"),
                ("process", failing, "process"),
                ("discovery/Region", shaped["discovery/Region"], "discovery"),
            ):
                status, _ = await gateway.call(
                    session,
                    "PUT",
                    f"/api/v1/connectors/{guid}/scripts/{target}",
                    token,
                    data=source.encode(),
                    headers={"Content-Type": "application/javascript"},
                )
                assert status == 200
                run_body: dict[str, Any] = {"mode": mode, "account_id": account["id"]}
                run_body |= {"parameter": "Region"} if mode == "discovery" else {"report": "All"}
                status, run = await gateway.call(
                    session, "POST", f"/api/v1/connectors/{guid}/runs", token, json=run_body
                )
                assert status == 200, run
                assert run["status"] in ("success", "failed"), run["error"]
                run_ids.append(run["run_id"])
            assert run["discovery"]["options"] == [
                {"value": "[redacted]", "label": "label [redacted]"}
            ]
            for run_id in run_ids:
                await gateway.call(session, "GET", f"/api/v1/runs/{run_id}", token)
            await gateway.call(session, "GET", f"/api/v1/runs?connector={guid}", token)
            await gateway.call(session, "GET", "/api/v1/accounts", token)
            await gateway.call(session, "GET", f"/api/v1/connectors/{guid}", token)
            await gateway.call(
                session, "GET", f"/api/v1/accounts/{account['id']}?token={TOKEN_SECRET}", token
            )
            await gateway.call(session, "GET", "/api/v1/me", f"gw_{PASSWORD}")
            await gateway.call(session, "GET", "/metrics")
    finally:
        await upstream.close()
    gateway.process.terminate()
    _, stderr = await asyncio.wait_for(gateway.process.communicate(), timeout=20)
    logs = stderr.decode()
    assert "request_finished" in logs  # the logs were captured at all
    for canary in CANARIES:
        for body in gateway.bodies:
            assert canary not in body
        assert canary not in logs
        encoded = base64.b64encode(canary.encode()).decode().rstrip("=")
        assert encoded not in logs
        for path in gateway.data.rglob("*"):
            if path.is_file() and path.name != "encryption.keys":
                assert canary.encode() not in path.read_bytes(), path
