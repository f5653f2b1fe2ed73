"""Development runs over HTTP with real workers, and the stored runs (SPEC 4.2, 4.3)."""

from __future__ import annotations

import json
from datetime import timedelta
from http import HTTPStatus
from pathlib import Path
from typing import Any

import pytest
import structlog
from pytest_aiohttp import AiohttpClient
from sqlalchemy import select, update

from gateway.app import create_app
from gateway.connectors.records import Connector
from gateway.connectors.tables import runs
from gateway.errors import NotFound
from gateway.identity.principal import Principal
from gateway.keys import ENGINE, POOL, RUNS, SETTINGS
from gateway.settings import Settings
from gateway.store.tables import utcnow
from runtime.host import Host
from runtime.model import JsonValue, RunRequest, RunResult
from runtime.pool import PoolBusy
from tests.domo_fakes import PASSWORD, USERNAME, DomoHosts
from tests.gateway.callers import Caller, Client, problem
from tests.gateway.connectors.conftest import (
    Upstream,
    create_connector,
    put_script,
    script,
    settings_with_domo_hosts,
)

CREDENTIALS = {"username": USERNAME, "password": PASSWORD}


@pytest.fixture
def settings(tmp_path: Path, domo_hosts: DomoHosts) -> Settings:
    """The app of these tests reaches developer.domo.com's local fake."""
    return settings_with_domo_hosts(tmp_path, domo_hosts)


async def _samplecrm(client: Client, owner: Caller) -> str:
    created = await create_connector(client, owner)
    await put_script(client, owner, created["guid"], "auth", script("samplecrm/auth.js"))
    await put_script(client, owner, created["guid"], "process", script("samplecrm/process.js"))
    guid: str = created["guid"]
    return guid


async def _run(client: Client, caller: Caller, guid: str, **body: Any) -> dict[str, Any]:
    response = await client.post(
        f"/api/v1/connectors/{guid}/runs", headers=caller.headers, json=body
    )
    assert response.status == HTTPStatus.OK, await response.text()
    result: dict[str, Any] = await response.json()
    assert response.headers["X-Run-Id"] == result["run_id"]
    return result


async def _stored_row_text(client: Client, run_id: str) -> str:
    await client.app[RUNS].flush_runs()
    async with client.app[ENGINE].connect() as connection:
        row = (await connection.execute(select(runs).where(runs.c.id == run_id))).one()
    return json.dumps([str(value) for value in row])


async def test_samplecrm_auth_run_with_credentials_redacts_the_password(
    client: Client, owner: Caller, domo_hosts: DomoHosts
) -> None:
    guid = await _samplecrm(client, owner)
    result = await _run(client, owner, guid, mode="auth", credentials=CREDENTIALS)
    assert result["status"] == "success"
    assert result["auth"] == {"success": True, "message": None}
    assert result["logs"] == [
        f"metadata.account.username: {USERNAME}",
        "metadata.account.password: [redacted]",
    ]
    assert [(h["method"], h["url"], h["status"]) for h in result["http"]] == [
        ("GET", "https://developer.domo.com/samplecrm", 200)
    ]
    assert (result["error"], result["discovery"]) == (None, None)
    assert len(domo_hosts.seen.crm_requests) == 1
    metrics = await (await client.get("/metrics")).text()
    assert 'gateway_runs_total{kind="dev",status="success"} 1.0' in metrics

    stored = await client.get(f"/api/v1/runs/{result['run_id']}", headers=owner.headers)
    assert stored.status == HTTPStatus.OK
    record = await stored.json()
    assert {k: record[k] for k in result} == result
    assert (record["connector_guid"], record["user_id"], record["kind"], record["mode"]) == (
        guid,
        owner.user_id,
        "dev",
        "auth",
    )
    assert record["account_resolution"] == {"source": "credentials"}
    assert PASSWORD not in await stored.text()
    assert PASSWORD not in await _stored_row_text(client, result["run_id"])


async def test_wrong_password_fails_with_the_scripts_message(
    client: Client, owner: Caller, domo_hosts: DomoHosts
) -> None:
    guid = await _samplecrm(client, owner)
    result = await _run(
        client, owner, guid, mode="auth", credentials={"username": USERNAME, "password": "nope"}
    )
    assert result["status"] == "failed"
    assert result["auth"] == {
        "success": False,
        "message": "Your username and password are incorrect.",
    }


async def test_samplecrm_process_run_builds_the_report(
    client: Client, owner: Caller, domo_hosts: DomoHosts
) -> None:
    guid = await _samplecrm(client, owner)
    result = await _run(client, owner, guid, credentials=CREDENTIALS, report="Opportunities")
    assert result["status"] == "success", result["error"]
    assert len(result["columns"]) == 29
    assert [row[2] for row in result["rows"]] == ["Grand Hotels", "Pyramid Co"]
    assert "metadata.account.password: [redacted]" in result["logs"]
    assert PASSWORD not in json.dumps(result)


async def test_a_run_is_logged_on_its_requests_one_line(client: Client, owner: Caller) -> None:
    guid = await _samplecrm(client, owner)
    with structlog.testing.capture_logs() as captured:
        result = await _run(client, owner, guid, mode="auth", credentials=CREDENTIALS)
    lines = [event for event in captured if event["event"] in ("run_finished", "request_finished")]
    assert [line["event"] for line in lines] == ["request_finished"]
    assert lines[0]["run_id"] == result["run_id"]
    assert lines[0]["run_status"] == "success"
    assert lines[0]["run_kind"] == "dev"
    assert lines[0]["connector_guid"] == guid
    assert lines[0]["status"] == HTTPStatus.OK


async def test_custom_secret_fields_and_local_upstream(
    client: Client, owner: Caller, upstream: Upstream
) -> None:
    created = await create_connector(
        client,
        owner,
        key="whoami",
        auth={"method": "apikey"},
        account_fields=[{"name": "pin", "secret": True}, {"name": "region", "required": True}],
        allowed_hosts=[upstream.host],
    )
    url = f"http://{upstream.host}/whoami?pin="
    source = f"""
        DOMO.log('key ' + metadata.account.apikey + ' pin ' + metadata.account.pin);
        DOMO.log('region ' + metadata.account.region);
        httprequest.addHeader('X-Api-Key', metadata.account.apikey);
        datagrid.magicParseJSON(httprequest.get('{url}' + metadata.account.pin));
    """
    await put_script(client, owner, created["guid"], "process", source)
    credentials = {"apikey": "k-123-secret", "pin": "4711", "region": "eu"}
    result = await _run(client, owner, created["guid"], credentials=credentials)
    assert result["status"] == "success", result["error"]
    assert result["logs"] == ["key [redacted] pin [redacted]", "region eu"]
    assert result["rows"] == [[1, "Ann"], [2, "Bob"]]
    assert result["http"][0]["url"] == f"http://{upstream.host}/whoami?pin=[redacted]"
    assert upstream.seen[0]["X-Api-Key"] == "k-123-secret"
    stored = await _stored_row_text(client, result["run_id"])
    assert "k-123-secret" not in stored
    assert "4711" not in stored


async def test_hosts_outside_allowed_hosts_are_refused(
    client: Client, owner: Caller, upstream: Upstream
) -> None:
    created = await create_connector(client, owner, auth={"method": "none"})
    await put_script(
        client,
        owner,
        created["guid"],
        "process",
        f"httprequest.get('http://{upstream.host}/whoami');",
    )
    result = await _run(client, owner, created["guid"])
    assert result["status"] == "error"
    assert result["error"]["code"] == "egress_refused"
    assert upstream.seen == []


async def test_discovery_run(client: Client, owner: Caller) -> None:
    created = await create_connector(
        client, owner, parameters=[{"name": "Region", "type": "discovery"}]
    )
    await put_script(
        client,
        owner,
        created["guid"],
        "discovery/Region",
        "discovery.addOption('eu-1', 'Europe'); discovery.addOption('us-2');",
    )
    result = await _run(client, owner, created["guid"], mode="discovery", parameter="Region")
    assert result["status"] == "success"
    assert result["discovery"]["options"] == [
        {"value": "eu-1", "label": "Europe"},
        {"value": "us-2", "label": "us-2"},
    ]


async def test_run_requests_are_checked(client: Client, owner: Caller) -> None:
    created = await create_connector(
        client,
        owner,
        account_fields=[{"name": "tenant", "required": True}],
        parameters=[
            {"name": "Since", "type": "date", "required": True},
            {"name": "Max", "type": "integer"},
            {"name": "Region", "type": "discovery"},
        ],
    )
    path = f"/api/v1/connectors/{created['guid']}/runs"

    async def refused(body: dict[str, Any], code: str) -> list[dict[str, Any]]:
        body = {"parameters": {"Since": "2024-01-01"}, **body}
        response = await client.post(path, headers=owner.headers, json=body)
        problem_body = await problem(response, HTTPStatus.UNPROCESSABLE_ENTITY, code)
        return list(problem_body.get("errors", []))

    errors = await refused(
        {"credentials": {"username": "u", "password": "p", "apikey": "x"}}, "validation_failed"
    )
    assert {tuple(e["loc"]) for e in errors} == {
        ("credentials", "apikey"),
        ("credentials", "tenant"),
    }
    errors = await refused({"credentials": {"tenant": "t"}}, "validation_failed")
    assert {tuple(e["loc"]) for e in errors} == {
        ("credentials", "username"),
        ("credentials", "password"),
    }
    await refused({"account_id": "a1", "credentials": {}}, "validation_failed")
    await refused({"mode": "discovery"}, "validation_failed")
    await refused({"mode": "discovery", "parameter": "Since"}, "validation_failed")
    await refused({"mode": "sideways"}, "validation_failed")
    errors = await refused({"report": "Leads"}, "validation_failed")
    assert errors[0]["loc"] == ["report"]
    errors = await refused(
        {"parameters": {"Since": "2024-02-30", "Max": True}}, "invalid_parameters"
    )
    assert {tuple(e["loc"]) for e in errors} == {("parameters", "Since"), ("parameters", "Max")}
    errors = await refused({"parameters": {"Max": "ten", "Color": "red"}}, "invalid_parameters")
    assert {tuple(e["loc"]) for e in errors} == {
        ("parameters", "Max"),
        ("parameters", "Color"),
        ("parameters", "Since"),
    }
    # Valid parameters, but no process script yet.
    body = await problem(
        await client.post(
            path,
            headers=owner.headers,
            json={"parameters": {"Since": {"start": "2024-01-01", "end": "2024-01-31"}}},
        ),
        HTTPStatus.CONFLICT,
        "conflict",
    )
    assert "process script" in body["detail"]


async def test_only_the_owner_runs_a_draft(
    client: Client, owner: Caller, colleague: Caller, admin: Caller
) -> None:
    created = await create_connector(client, owner, auth={"method": "none"})
    for caller in (colleague, admin):
        await problem(
            await client.post(
                f"/api/v1/connectors/{created['guid']}/runs", headers=caller.headers, json={}
            ),
            HTTPStatus.FORBIDDEN,
            "forbidden",
        )


async def test_run_visibility(
    client: Client, owner: Caller, colleague: Caller, admin: Caller, outsider: Caller
) -> None:
    created = await create_connector(client, owner, auth={"method": "none"})
    await put_script(client, owner, created["guid"], "process", "DOMO.log('hi');")
    first = await _run(client, owner, created["guid"])
    second = await _run(client, owner, created["guid"])
    path = f"/api/v1/runs/{first['run_id']}"
    assert (await client.get(path, headers=admin.headers)).status == HTTPStatus.OK
    for caller in (colleague, outsider):
        await problem(
            await client.get(path, headers=caller.headers), HTTPStatus.NOT_FOUND, "not_found"
        )
    await problem(
        await client.get("/api/v1/runs/nope", headers=owner.headers),
        HTTPStatus.NOT_FOUND,
        "not_found",
    )

    async def listed(caller: Caller, query: str = "") -> list[str]:
        response = await client.get(f"/api/v1/runs{query}", headers=caller.headers)
        assert response.status == HTTPStatus.OK
        page = await response.json()
        return [item["run_id"] for item in page["items"]]

    newest_first = [second["run_id"], first["run_id"]]
    assert await listed(owner) == newest_first
    assert await listed(admin, f"?connector={created['guid']}") == newest_first
    assert await listed(owner, "?connector=another") == []
    assert await listed(colleague) == []
    assert await listed(outsider, f"?connector={created['guid']}") == []
    page = await (await client.get("/api/v1/runs?limit=1", headers=owner.headers)).json()
    assert page["items"][0]["status"] == "success"
    assert page["next_cursor"] == second["run_id"]
    # The connector's deletion leaves its runs readable until they are purged.
    await client.delete(f"/api/v1/connectors/{created['guid']}", headers=owner.headers)
    assert (await client.get(path, headers=owner.headers)).status == HTTPStatus.OK


async def test_a_full_queue_is_429_or_503_with_retry_after(
    client: Client, owner: Caller, monkeypatch: Any
) -> None:
    created = await create_connector(client, owner, auth={"method": "none"})
    await put_script(client, owner, created["guid"], "process", "DOMO.log(1);")
    for tenant_full, status, code in (
        (True, HTTPStatus.TOO_MANY_REQUESTS, "too_many_requests"),
        (False, HTTPStatus.SERVICE_UNAVAILABLE, "service_unavailable"),
    ):

        async def busy(request: RunRequest, host: Host, full: bool = tenant_full) -> RunResult:
            raise PoolBusy("too many runs are waiting", tenant_full=full, retry_after=5)

        monkeypatch.setattr(client.app[POOL], "run", busy)
        response = await client.post(
            f"/api/v1/connectors/{created['guid']}/runs", headers=owner.headers, json={}
        )
        await problem(response, status, code)
        assert response.headers["Retry-After"] == "5"


class FakeAccounts:
    """An account source with one account, `acct-1`, of the caller."""

    async def metadata_for_run(
        self, principal: Principal, connector: Connector, account_id: str
    ) -> tuple[dict[str, JsonValue], tuple[str, ...]]:
        if account_id != "acct-1":
            raise NotFound("no such account")
        return {"username": USERNAME, "password": PASSWORD}, (PASSWORD,)


async def test_account_id_through_an_account_source(
    client: Client, owner: Caller, domo_hosts: DomoHosts
) -> None:
    client.app[RUNS].use_accounts(FakeAccounts())
    guid = await _samplecrm(client, owner)
    result = await _run(client, owner, guid, mode="auth", account_id="acct-1")
    assert result["status"] == "success"
    assert "metadata.account.password: [redacted]" in result["logs"]
    record = await (
        await client.get(f"/api/v1/runs/{result['run_id']}", headers=owner.headers)
    ).json()
    assert record["account_resolution"] == {"source": "account", "account_id": "acct-1"}
    await problem(
        await client.post(
            f"/api/v1/connectors/{guid}/runs", headers=owner.headers, json={"account_id": "other"}
        ),
        HTTPStatus.NOT_FOUND,
        "not_found",
    )


async def test_runs_past_their_retention_are_swept(
    client: Client, owner: Caller, upstream: Upstream, aiohttp_client: AiohttpClient
) -> None:
    connector = await create_connector(
        client, owner, key="sweep", auth={"method": "none"}, allowed_hosts=[upstream.host]
    )
    await put_script(client, owner, connector["guid"], "process", "DOMO.log('hello')")
    runs_made = [
        await (
            await client.post(
                f"/api/v1/connectors/{connector['guid']}/runs",
                headers=owner.headers,
                json={"mode": "process", "report": "Opportunities"},
            )
        ).json()
        for _ in range(2)
    ]
    old, recent = (run["run_id"] for run in runs_made)
    await client.app[RUNS].flush_runs()
    async with client.app[ENGINE].begin() as connection:
        await connection.execute(
            update(runs).where(runs.c.id == old).values(created_at=utcnow() - timedelta(days=31))
        )
    # A new app on the same data folder sweeps at start (GATEWAY_RUN_RETENTION_DAYS = 30).
    second = await aiohttp_client(create_app(client.app[SETTINGS]))
    gone = await second.get(f"/api/v1/runs/{old}", headers=owner.headers)
    assert gone.status == HTTPStatus.NOT_FOUND
    kept = await second.get(f"/api/v1/runs/{recent}", headers=owner.headers)
    assert kept.status == HTTPStatus.OK
