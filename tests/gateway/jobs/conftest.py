"""Fixtures of the job tests: a fake third party, a movable clock, connectors and polling."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.web import Application
from pytest_aiohttp import AiohttpServer
from sqlalchemy import select

from gateway.app import create_app
from gateway.keys import CLOCK, ENGINE
from gateway.settings import Settings
from tests.gateway.callers import Caller, Client
from tests.gateway.connectors.conftest import create_connector, put_script
from tests.openapi_check import Conformance, watch
from writeback.jobs.models import Clock
from writeback.jobs.tables import jobs

# A writeback script: one POST with the job's id as the idempotency key; a status other
# than 200 ends the run with `datagrid.error` (the gateway decides whether to retry).
PUSH_SCRIPT = """
httprequest.addHeader('Content-Type', 'application/json');
httprequest.addHeader('Idempotency-Key', metadata.jobId);
httprequest.post('http://HOST/items', JSON.stringify({n: metadata.parameters.n || 0}));
var code = httprequest.getStatusCode();
if (code != 200) { datagrid.error('upstream', 'the API answered ' + code); }
DOMO.log('attempt ' + metadata.attempt);
"""

# A pull script: the rows of `/rows` become the datagrid; a row with `fail` ends it failed.
PULL_SCRIPT = """
var rows = JSON.parse(httprequest.get('http://HOST/rows'));
datagrid.magicParseJSON(rows.filter(function (r) { return !r.fail; }));
if (rows.some(function (r) { return r.fail; })) { datagrid.error('bad', 'the API said no'); }
"""


class MovableClock(Clock):
    """A clock that stands still until a test moves it."""

    def __init__(self) -> None:
        self.moment = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)

    def now(self) -> datetime:
        """The time the test set."""
        return self.moment

    def advance(self, seconds: float) -> None:
        """Move the time on."""
        self.moment += timedelta(seconds=seconds)


@dataclass
class ThirdParty:
    """A fake API on 127.0.0.1: applies each idempotency key's POST once, answers as planned.

    `applied` maps each key whose side effect happened to the number of the POST that did it.
    """

    port: int
    posts: list[dict[str, Any]] = field(default_factory=list)
    applied: dict[str, int] = field(default_factory=dict)
    plan: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    rows: list[dict[str, Any]] = field(default_factory=list)
    blocked: asyncio.Event = field(default_factory=asyncio.Event)
    release: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def script(self, source: str) -> str:
        """`source` with this server's host."""
        return source.replace("HOST", self.host)


@pytest.fixture
async def third_party(aiohttp_server: AiohttpServer) -> ThirdParty:
    """The fake third-party API."""
    state = ThirdParty(0)

    async def items(request: web.Request) -> web.Response:
        body = await request.json()
        key = request.headers.get("Idempotency-Key", "")
        state.posts.append({"key": key, **body})
        if state.plan:
            status, headers = state.plan.pop(0)
            return web.json_response({"error": "later"}, status=status, headers=headers)
        if key not in state.applied:  # the side effect happens once per key
            state.applied[key] = len(state.posts)
        return web.json_response({"ok": True})

    async def rows(request: web.Request) -> web.Response:
        return web.json_response(state.rows)

    async def block(request: web.Request) -> web.Response:
        state.blocked.set()
        await state.release.wait()
        return web.json_response({})

    app = web.Application()
    app.router.add_post("/items", items)
    app.router.add_get("/rows", rows)
    app.router.add_get("/block", block)
    server = await aiohttp_server(app)
    assert server.port is not None
    state.port = server.port
    return state


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Two workers, loopback reachable, quick heartbeats and polls, three attempts, one job
    at a time per customer, no backoff (retry timing is tested with `Retry-After`)."""
    return Settings(
        data_dir=tmp_path / "data",
        workers=2,
        egress_allow_private=True,
        job_heartbeat_s=0.05,
        job_poll_s=0.05,
        job_max_attempts=3,
        job_customer_concurrency=1,
        job_backoff_s=0.0,
        schedule_poll_s=600.0,
    )


async def job_connector(
    client: Client, caller: Caller, third_party: ThirdParty, source: str, **changes: Any
) -> dict[str, Any]:
    """A connector of `caller` (writeback by default, no auth) with `source` as its script."""
    body: dict[str, Any] = {
        "kind": "writeback",
        "auth": {"method": "none"},
        "allowed_hosts": [third_party.host],
        "reports": ["push"],
        "key": "pushy",
        "name": "Pushy",
        **changes,
    }
    created = await create_connector(client, caller, **body)
    await put_script(client, caller, created["guid"], "process", third_party.script(source))
    return created


async def create_job(
    client: Client, caller: Caller, guid: str, body: dict[str, Any] | None = None, **headers: str
) -> Any:
    """`POST /domo/writeback/v1/{guid}/jobs`."""
    return await client.post(
        f"/domo/writeback/v1/{guid}/jobs",
        data=json.dumps(body or {}),
        headers={**caller.headers, "Content-Type": "application/json", **headers},
    )


async def queued(
    client: Client, caller: Caller, guid: str, body: dict[str, Any] | None = None
) -> str:
    """Queue a job and return its id (asserting 202)."""
    response = await create_job(client, caller, guid, body)
    assert response.status == HTTPStatus.ACCEPTED, await response.text()
    job_id: str = (await response.json())["id"]
    return job_id


async def job_of(client: Client, caller: Caller, job_id: str) -> dict[str, Any]:
    """`GET /domo/writeback/v1/jobs/{id}` (asserting 200)."""
    response = await client.get(f"/domo/writeback/v1/jobs/{job_id}", headers=caller.headers)
    assert response.status == HTTPStatus.OK, await response.text()
    job: dict[str, Any] = await response.json()
    return job


async def until(client: Client, caller: Caller, job_id: str, *statuses: str) -> dict[str, Any]:
    """Poll the job until its status is one of `statuses` (the test's timeout bounds it)."""
    while True:
        job = await job_of(client, caller, job_id)
        if job["status"] in statuses:
            return job
        await asyncio.sleep(0.02)


@pytest.fixture
def clock() -> MovableClock:
    """The jobs' and schedules' clock, standing still until the test moves it."""
    return MovableClock()


@pytest.fixture
def app(settings: Settings, conformance: Conformance, clock: MovableClock) -> Application:
    """The real application on the movable clock, responses checked against openapi.yaml."""
    app = watch(create_app(settings), conformance)
    app[CLOCK] = clock
    return app


async def until_job(
    client: Client, caller: Caller, job_id: str, done: Callable[[dict[str, Any]], bool]
) -> dict[str, Any]:
    """Poll the job until `done(job)` (the test's timeout bounds it)."""
    while True:
        job = await job_of(client, caller, job_id)
        if done(job):
            return job
        await asyncio.sleep(0.02)


async def job_ids(client: Client) -> list[tuple[str, str]]:
    """Every job in the store as (id, trigger), oldest first."""
    async with client.app[ENGINE].connect() as connection:
        rows = await connection.execute(select(jobs.c.id, jobs.c.trigger).order_by(jobs.c.id))
        return [(row.id, row.trigger) for row in rows]
