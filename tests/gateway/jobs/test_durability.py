"""Two `gateway serve` processes on one PostgreSQL, one killed with SIGKILL midway (THREATS D1).

Every job ends `succeeded` within two attempts, and no side effect happens twice: the
script sends `metadata.jobId` as the idempotency key, and the fake API applies a key once.
"""

from __future__ import annotations

import asyncio
import signal
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import aiohttp
import pytest
from aiohttp import web
from pytest_aiohttp import AiohttpServer

from gateway.crypto import new_key_entry
from tests.cli.served import Served, serve
from tests.cli.test_script_run import gateway

JOBS: Final = 200
HOLD_AT: Final = 60
WORKERS_PER_GATEWAY: Final = 2

SCRIPT = """
httprequest.addHeader('Content-Type', 'application/json');
httprequest.addHeader('Idempotency-Key', metadata.jobId);
httprequest.post('http://HOST/items', JSON.stringify({job: metadata.jobId}));
if (httprequest.getStatusCode() != 200) { datagrid.error('upstream', 'not applied'); }
"""


@dataclass
class Sink:
    """The fake API. `deliveries` counts the requests of each idempotency key; the API
    applies a key's effect on its first delivery only, so there is one effect per distinct
    key. From the `HOLD_AT`th request on it holds its answers (after applying) until
    released, so both gateways have runs in flight, whose effects happened, when one dies."""

    deliveries: Counter[str] = field(default_factory=Counter)
    held: int = 0
    holding: asyncio.Event = field(default_factory=asyncio.Event)
    released: asyncio.Event = field(default_factory=asyncio.Event)
    enough_held: asyncio.Event = field(default_factory=asyncio.Event)

    async def items(self, request: web.Request) -> web.Response:
        self.deliveries[request.headers["Idempotency-Key"]] += 1
        if self.deliveries.total() >= HOLD_AT and not self.released.is_set():
            self.held += 1
            # More runs held than one gateway has workers: the other has some in flight.
            if self.held > WORKERS_PER_GATEWAY:
                self.enough_held.set()
            await self.released.wait()
        return web.json_response({"ok": True})


async def _bootstrap(data_dir: Path, env: dict[str, str]) -> str:
    done = await gateway(
        "admin",
        "bootstrap",
        "--customer",
        "acme",
        "--email",
        "ops@acme.test",
        "--data-dir",
        str(data_dir),
        env=env,
    )
    assert done.code == 0, done.stderr
    return done.stdout.splitlines()[-1]


async def _call(
    session: aiohttp.ClientSession, served: Served, token: str, method: str, path: str, **kw: Any
) -> Any:
    headers = {"Authorization": f"Bearer {token}", **kw.pop("headers", {})}
    async with session.request(method, served.url + path, headers=headers, **kw) as response:
        assert response.status < 300, await response.text()
        return await response.json()


@pytest.mark.parametrize("db_backend", ["postgresql"], indirect=True)
async def test_jobs_survive_a_gateway_killed_midway(
    db_url: str, tmp_path: Path, aiohttp_server: AiohttpServer
) -> None:
    sink = Sink()
    app = web.Application()
    app.router.add_post("/items", sink.items)
    server = await aiohttp_server(app)
    host = f"127.0.0.1:{server.port}"
    data_dir = tmp_path / "data"
    env = {
        "GATEWAY_DATABASE_URL": db_url,
        "GATEWAY_ENCRYPTION_KEYS": new_key_entry(),
        "GATEWAY_EGRESS_ALLOW_PRIVATE": "true",
        "GATEWAY_WORKERS": str(WORKERS_PER_GATEWAY),
        "GATEWAY_JOB_LEASE_S": "3",
        "GATEWAY_JOB_HEARTBEAT_S": "0.3",
        "GATEWAY_JOB_POLL_S": "0.2",
        "GATEWAY_JOB_CONCURRENCY": "4",
        "GATEWAY_JOB_CUSTOMER_CONCURRENCY": "64",
        "GATEWAY_JOB_BACKOFF_S": "0",
    }
    token = await _bootstrap(data_dir, env)
    async with (
        serve(data_dir, env) as first,
        serve(data_dir, env) as second,
        aiohttp.ClientSession() as session,
    ):
        connector = await _call(
            session,
            first,
            token,
            "POST",
            "/api/v1/connectors",
            json={
                "kind": "writeback",
                "name": "Sink",
                "key": "sink",
                "auth": {"method": "none"},
                "allowed_hosts": [host],
                "reports": ["push"],
            },
        )
        await _call(
            session,
            first,
            token,
            "PUT",
            f"/api/v1/connectors/{connector['guid']}/scripts/process",
            data=SCRIPT.replace("HOST", host).encode(),
            headers={"Content-Type": "application/javascript"},
        )
        path = f"/domo/writeback/v1/{connector['guid']}/jobs"
        created = await asyncio.gather(
            *(
                _call(session, (first, second)[i % 2], token, "POST", path, json={})
                for i in range(JOBS)
            )
        )
        job_ids = [job["id"] for job in created]

        await asyncio.wait_for(sink.enough_held.wait(), 60)
        assert await first.stop(signal.SIGKILL) == -signal.SIGKILL
        sink.released.set()

        ended: dict[str, dict[str, Any]] = {}
        while len(ended) < JOBS:
            for job_id in [j for j in job_ids if j not in ended]:
                job = await _call(
                    session, second, token, "GET", f"/domo/writeback/v1/jobs/{job_id}"
                )
                if job["status"] in ("succeeded", "failed", "cancelled"):
                    ended[job_id] = job
            await asyncio.sleep(0.2)

    assert {job["status"] for job in ended.values()} == {"succeeded"}
    attempts = [job["attempts"] for job in ended.values()]
    assert max(attempts) <= 2
    assert 2 in attempts  # the killed gateway's jobs were reclaimed as second attempts
    # Every delivery carried its job's id, every retry the same one: one effect per job.
    assert sorted(sink.deliveries) == sorted(job_ids)
    assert max(sink.deliveries.values()) == 2  # delivered again after the kill, applied once
