"""The public form (SPEC 4.1): `GET /v1/domoactions` and the four renderings of the cell."""

from __future__ import annotations

import csv
import io
import json
from http import HTTPStatus
from typing import Any

import pytest
import yaml
from defusedxml.ElementTree import fromstring

from tests.gateway.actions.conftest import make_action, publish
from tests.gateway.callers import Caller, Client, problem

CELL = {"deals": [{"id": 1, "stage": "won"}, {"id": 2, "stage": "lost, later"}], "ok": True}
PROCESS = (
    "datagrid.addColumn('answer', 'STRING');"
    f"datagrid.addCell(JSON.stringify({json.dumps(CELL)})); datagrid.endRow();"
)


async def _call(client: Client, caller: Caller, guid: str, accept: str | None) -> Any:
    headers = dict(caller.headers)
    if accept is not None:
        headers["Accept"] = accept
    return await client.post(f"/v1/domoactions/{guid}/process", json={}, headers=headers)


async def test_the_list_is_a_bare_array(
    client: Client, owner: Caller, colleague: Caller, admin: Caller
) -> None:
    guid = await make_action(client, owner, PROCESS, auth={"method": "none"})
    response = await client.get("/v1/domoactions", headers=owner.headers)
    assert await response.json() == [{"name": "Sample CRM", "guid": guid, "version": None}]
    assert await (await client.get("/v1/domoactions", headers=colleague.headers)).json() == []
    await publish(client, admin, guid)
    response = await client.get("/v1/domoactions", headers=colleague.headers)
    assert await response.json() == [{"name": "Sample CRM", "guid": guid, "version": 1}]
    await problem(await client.get("/v1/domoactions"), HTTPStatus.UNAUTHORIZED, "unauthenticated")


@pytest.mark.parametrize(
    ("accept", "content_type"),
    [
        (None, "application/json"),
        ("*/*", "application/json"),
        ("application/json", "application/json"),
        ("application/xml", "application/xml"),
        ("application/x-yaml", "application/x-yaml"),
        ("text/html;q=0.9, text/csv", "text/csv"),
    ],
)
async def test_the_first_cell_in_each_rendering(
    client: Client, owner: Caller, accept: str | None, content_type: str
) -> None:
    guid = await make_action(client, owner, PROCESS, auth={"method": "none"})
    response = await _call(client, owner, guid, accept)
    assert response.status == HTTPStatus.OK, await response.text()
    assert response.content_type == content_type
    assert response.headers["X-Run-Id"]
    text = await response.text()
    if content_type == "application/json":
        assert json.loads(text) == CELL
    elif content_type == "application/x-yaml":
        assert yaml.safe_load(text) == CELL
    elif content_type == "application/xml":
        root = fromstring(text)
        assert root.tag == "result"
        assert [item.findtext("stage") for item in root.iter("item")] == ["won", "lost, later"]
        assert root.findtext("ok") == "true"
    else:
        rows = list(csv.reader(io.StringIO(text)))
        assert rows == [["deals", "ok"], [json.dumps(CELL["deals"]), "true"]]


async def test_csv_of_an_array_of_objects(client: Client, owner: Caller) -> None:
    source = (
        "datagrid.addColumn('a', 'STRING');"
        'datagrid.addCell(\'[{"id": 1, "x": "a,b"}, {"id": 2, "y": null}]\');'
        "datagrid.endRow();"
    )
    guid = await make_action(client, owner, source, auth={"method": "none"})
    response = await _call(client, owner, guid, "text/csv")
    rows = list(csv.reader(io.StringIO(await response.text())))
    assert rows == [["id", "x", "y"], ["1", "a,b", ""], ["2", "", ""]]


async def test_an_unacceptable_accept_is_406_and_runs_nothing(
    client: Client, owner: Caller
) -> None:
    guid = await make_action(client, owner, PROCESS, auth={"method": "none"})
    body = await problem(
        await _call(client, owner, guid, "text/html"), HTTPStatus.NOT_ACCEPTABLE, "not_acceptable"
    )
    assert "text/csv" in body["detail"]
    runs = await (await client.get("/api/v1/runs", headers=owner.headers)).json()
    assert runs["items"] == []
