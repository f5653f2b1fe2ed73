"""The dataset endpoints: streamed uploads of every format, versions, rights, tenancy, queries."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from http import HTTPStatus
from pathlib import Path
from typing import Any

import duckdb
import pytest

from gateway.keys import DATASETS
from tests.gateway.callers import Caller, Client, problem
from tests.gateway.datasets.conftest import (
    CSV,
    SAMPLE_CSV,
    created,
    dataset_root,
    file_hashes,
    query,
    upload,
)
from writeback.datasets import storage

SAMPLE_TYPES = [
    {"name": "id", "type": "LONG"},
    {"name": "zip", "type": "STRING"},
    {"name": "amount", "type": "DOUBLE"},
    {"name": "when", "type": "DATE"},
    {"name": "flag", "type": "BOOLEAN"},
    {"name": "first name", "type": "STRING"},
]


async def put_data(
    client: Client, caller: Caller, dataset_id: str, body: Any, mode: str, **query: str
) -> Any:
    return await client.put(
        f"/api/v1/datasets/{dataset_id}/data",
        params={"mode": mode, **query},
        data=body,
        headers={**caller.headers, "Content-Type": CSV},
    )


async def rows(client: Client, caller: Caller, dataset_id: str, sql: str) -> list[list[Any]]:
    response = await query(client, caller, dataset_id, sql)
    assert response.status == 200, await response.text()
    result: list[list[Any]] = (await response.json())["rows"]
    return result


async def test_csv_upload_infers_types_and_keeps_leading_zeros(
    client: Client, owner: Caller
) -> None:
    response = await upload(client, owner, SAMPLE_CSV)
    assert response.status == HTTPStatus.CREATED
    body = await response.json()
    assert response.headers["Location"] == f"/api/v1/datasets/{body['id']}"
    assert body["columns"] == SAMPLE_TYPES
    assert body["row_count"] == 2
    assert body["version"] == 1
    assert body["versions"][0]["number"] == 1
    assert body["size"] > 0
    found = await rows(
        client, owner, body["id"], 'SELECT "first name", zip, "when" FROM tbl ORDER BY id'
    )
    assert found == [["Ann", "00123", "2024-01-02"], ["Bo, Jr", "04567", "2024-02-03"]]


async def test_json_ndjson_and_parquet_uploads(
    client: Client, owner: Caller, tmp_path: Path
) -> None:
    records = [
        {"a": 1, "b": "00123", "c": {"x": 1}, "d": [1, 2], "e": "2024-01-01T10:00:00"},
        {"a": 2, "b": "7", "c": {"x": 2}, "d": [], "e": "2024-01-02T11:30:00"},
    ]
    expected = [
        {"name": "a", "type": "LONG"},
        {"name": "b", "type": "STRING"},
        {"name": "c", "type": "STRING"},
        {"name": "d", "type": "STRING"},
        {"name": "e", "type": "DATETIME"},
    ]
    as_json = await created(
        client, owner, json.dumps(records), name="j", content_type="application/json"
    )
    lines = "\n".join(json.dumps(r) for r in records) + "\n"
    as_lines = await created(client, owner, lines, name="l", content_type="application/x-ndjson")
    for body in (as_json, as_lines):
        assert body["columns"] == expected
        found = await rows(client, owner, body["id"], "SELECT b, c, d, e FROM tbl ORDER BY a")
        assert found[0] == ["00123", '{"x":1}', "[1,2]", "2024-01-01T10:00:00"]
    parquet = tmp_path / "upload.parquet"
    with duckdb.connect() as writer:
        writer.execute(
            "COPY (SELECT 1::INTEGER AS n, 2.5::DECIMAL(10,2) AS price, DATE '2024-03-04' AS day)"
            " TO ? (FORMAT parquet)",
            [str(parquet)],
        )
    body = await created(
        client,
        owner,
        parquet.read_bytes(),
        name="p",
        content_type="application/vnd.apache.parquet",
    )
    assert [c["type"] for c in body["columns"]] == ["LONG", "DECIMAL", "DATE"]
    assert await rows(client, owner, body["id"], "SELECT * FROM tbl") == [[1, 2.5, "2024-03-04"]]


async def test_a_given_schema_types_the_columns(client: Client, owner: Caller) -> None:
    given = [dict(c, type="STRING") if c["name"] == "id" else c for c in SAMPLE_TYPES]
    body = await created(client, owner, SAMPLE_CSV, columns=json.dumps(given))
    assert body["columns"] == given
    assert await rows(client, owner, body["id"], "SELECT id FROM tbl ORDER BY id") == [
        ["1"],
        ["2"],
    ]
    refused = await problem(
        await upload(client, owner, "id\nx\n", name="bad", columns='[{"name":"id","type":"LONG"}]'),
        HTTPStatus.UNPROCESSABLE_ENTITY,
        "upload_refused",
    )
    assert "Line: 2" in refused["detail"]
    assert '"id"' in refused["detail"]
    await problem(
        await upload(client, owner, SAMPLE_CSV, name="x", columns='[{"name":"id"}]'),
        HTTPStatus.UNPROCESSABLE_ENTITY,
        "validation_failed",
    )


async def test_append_and_replace_make_new_versions(client: Client, owner: Caller) -> None:
    dataset = await created(client, owner, SAMPLE_CSV)
    appended = await put_data(client, owner, dataset["id"], SAMPLE_CSV, "append")
    assert appended.status == 200, await appended.text()
    body = await appended.json()
    assert (body["version"], body["row_count"]) == (2, 4)
    assert [(v["number"], v["parts"], v["mode"]) for v in body["versions"]] == [
        (2, 2, "append"),
        (1, 1, "replace"),
    ]
    assert body["versions"][1]["retired_at"] is not None
    replaced = await put_data(client, owner, dataset["id"], "x,y\nhello,2\n", "replace")
    body = await replaced.json()
    assert (body["version"], body["row_count"]) == (3, 1)
    assert body["columns"] == [{"name": "x", "type": "STRING"}, {"name": "y", "type": "LONG"}]
    assert await rows(client, owner, dataset["id"], "SELECT * FROM tbl") == [["hello", 2]]


async def test_append_must_match_the_columns(client: Client, owner: Caller) -> None:
    dataset = await created(client, owner, SAMPLE_CSV)
    before = file_hashes(dataset_root(client.app))
    body = await problem(
        await put_data(client, owner, dataset["id"], "id,zip,other\n1,2,3\n", "append"),
        HTTPStatus.UNPROCESSABLE_ENTITY,
        "upload_refused",
    )
    assert "missing 'amount'" in body["detail"]
    assert "unexpected 'other'" in body["detail"]
    given = json.dumps([{"name": "id", "type": "STRING"}])
    body = await problem(
        await put_data(client, owner, dataset["id"], SAMPLE_CSV, "append", columns=given),
        HTTPStatus.UNPROCESSABLE_ENTITY,
        "upload_refused",
    )
    assert "'id' is LONG, not STRING" in body["detail"]
    assert file_hashes(dataset_root(client.app)) == before
    # Appended values are converted to the dataset's types: "007" stays a STRING zip.
    ok = await put_data(
        client, owner, dataset["id"], "id,zip,amount,when,flag,first name\n3,007,1,,,C\n", "append"
    )
    assert ok.status == 200, await ok.text()
    assert await rows(client, owner, dataset["id"], "SELECT zip FROM tbl WHERE id = 3") == [["007"]]


async def test_a_bad_file_leaves_the_previous_version(client: Client, owner: Caller) -> None:
    dataset = await created(client, owner, SAMPLE_CSV)
    root = dataset_root(client.app)
    before = file_hashes(root)
    ragged = "id,zip\n" + "".join(f"{n},{n}\n" for n in range(30_000)) + "1,2,3\n"
    body = await problem(
        await put_data(client, owner, dataset["id"], ragged, "replace"),
        HTTPStatus.UNPROCESSABLE_ENTITY,
        "upload_refused",
    )
    assert "30002" in body["detail"]
    assert str(root) not in body["detail"]
    for bad in ("", '[{"a": 1}, {"a":', "not json"):
        response = await client.put(
            f"/api/v1/datasets/{dataset['id']}/data",
            data=bad,
            headers={**owner.headers, "Content-Type": "application/json"},
        )
        await problem(response, HTTPStatus.UNPROCESSABLE_ENTITY, "upload_refused")
    assert file_hashes(root) == before
    current = await (
        await client.get(f"/api/v1/datasets/{dataset['id']}", headers=owner.headers)
    ).json()
    assert (current["version"], current["row_count"]) == (1, 2)
    assert await rows(client, owner, dataset["id"], "SELECT count(*) FROM tbl") == [[2]]


async def test_other_media_types_are_refused(client: Client, owner: Caller) -> None:
    await problem(
        await upload(client, owner, SAMPLE_CSV, content_type="text/plain"),
        HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    )
    assert not dataset_root(client.app).exists() or file_hashes(dataset_root(client.app)) == {}


async def test_a_large_csv_is_streamed_in_bounded_writes(
    client: Client, owner: Caller, monkeypatch: pytest.MonkeyPatch
) -> None:
    writes: list[int] = []
    original = storage._write

    def spy(file: Any, data: bytes) -> None:
        writes.append(len(data))
        original(file, data)

    monkeypatch.setattr(storage, "_write", spy)
    line = b"1234567,some text that fills the line,42.5\n"
    count = 6 * 1024 * 1024 // len(line)

    async def body() -> AsyncIterator[bytes]:
        yield b"id,text,value\n"
        for _ in range(count // 1000):
            yield line * 1000

    response = await upload(client, owner, body())
    assert response.status == 201, await response.text()
    assert (await response.json())["row_count"] == count // 1000 * 1000
    # The body reached the disk in many writes, none larger than the buffer plus one read.
    assert sum(writes) > 5 * 1024 * 1024
    assert len(writes) > 5
    assert max(writes) <= storage.WRITE_BUFFER_BYTES + 64 * 1024


async def test_a_client_leaving_mid_upload_keeps_the_previous_version(
    client: Client, owner: Caller, monkeypatch: pytest.MonkeyPatch
) -> None:
    dataset = await created(client, owner, SAMPLE_CSV)
    root = dataset_root(client.app)
    before = file_hashes(root)
    first_write = asyncio.Event()
    loop = asyncio.get_running_loop()
    finished = asyncio.Event()
    original_write = storage._write
    service_files = client.app[DATASETS].files
    original_receive = service_files.receive

    def spy(file: Any, data: bytes) -> None:
        original_write(file, data)
        loop.call_soon_threadsafe(first_write.set)

    async def receive(*args: Any, **kwargs: Any) -> Path:
        try:
            return await original_receive(*args, **kwargs)
        finally:
            finished.set()

    monkeypatch.setattr(storage, "_write", spy)
    monkeypatch.setattr(service_files, "receive", receive)
    _, writer = await asyncio.open_connection(client.host, client.port)
    chunk = b"id,zip\n" + b"1,2\n" * (storage.WRITE_BUFFER_BYTES // 4 + 1000)
    writer.write(
        (
            f"PUT /api/v1/datasets/{dataset['id']}/data?mode=replace HTTP/1.1\r\n"
            f"Host: {client.host}\r\nAuthorization: Bearer {owner.token}\r\n"
            f"Content-Type: text/csv\r\nContent-Length: {len(chunk) * 4}\r\n\r\n"
        ).encode()
        + chunk
    )
    await writer.drain()
    await asyncio.wait_for(first_write.wait(), 30)
    writer.close()
    await asyncio.wait_for(finished.wait(), 30)
    assert file_hashes(root) == before  # no upload or part file left, the part unchanged
    current = await (
        await client.get(f"/api/v1/datasets/{dataset['id']}", headers=owner.headers)
    ).json()
    assert (current["version"], current["row_count"]) == (1, 2)


async def test_an_upload_past_the_cap_is_refused(client: Client, owner: Caller) -> None:
    service = client.app[DATASETS]
    service.max_upload_bytes = 1000
    await problem(
        await upload(client, owner, SAMPLE_CSV * 20),
        HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
        "payload_too_large",
    )
    assert file_hashes(dataset_root(client.app)) == {}


async def test_names_are_unique_per_customer(
    client: Client, owner: Caller, outsider: Caller
) -> None:
    await created(client, owner, SAMPLE_CSV)
    await problem(await upload(client, owner, SAMPLE_CSV), HTTPStatus.CONFLICT, "conflict")
    await created(client, outsider, SAMPLE_CSV)
    await problem(
        await upload(client, owner, SAMPLE_CSV, name=" padded"),
        HTTPStatus.UNPROCESSABLE_ENTITY,
        "validation_failed",
    )


async def test_members_read_owners_and_admins_write(
    client: Client, owner: Caller, colleague: Caller, admin: Caller
) -> None:
    dataset = await created(client, owner, SAMPLE_CSV)
    url = f"/api/v1/datasets/{dataset['id']}"
    assert (await client.get(url, headers=colleague.headers)).status == 200
    assert await rows(client, colleague, dataset["id"], "SELECT count(*) FROM tbl") == [[2]]
    await problem(
        await put_data(client, colleague, dataset["id"], SAMPLE_CSV, "append"),
        HTTPStatus.FORBIDDEN,
        "forbidden",
    )
    await problem(
        await client.delete(url, headers=colleague.headers), HTTPStatus.FORBIDDEN, "forbidden"
    )
    assert (await put_data(client, admin, dataset["id"], SAMPLE_CSV, "append")).status == 200
    assert (await client.delete(url, headers=admin.headers)).status == 204
    await problem(await client.get(url, headers=owner.headers), HTTPStatus.NOT_FOUND, "not_found")


async def test_another_customers_dataset_is_not_found_everywhere(
    client: Client, owner: Caller, outsider: Caller
) -> None:
    dataset = await created(client, owner, SAMPLE_CSV)
    url = f"/api/v1/datasets/{dataset['id']}"
    await problem(
        await client.get(url, headers=outsider.headers), HTTPStatus.NOT_FOUND, "not_found"
    )
    await problem(
        await client.delete(url, headers=outsider.headers), HTTPStatus.NOT_FOUND, "not_found"
    )
    await problem(
        await put_data(client, outsider, dataset["id"], SAMPLE_CSV, "replace"),
        HTTPStatus.NOT_FOUND,
        "not_found",
    )
    await problem(
        await query(client, outsider, dataset["id"], "SELECT * FROM tbl"),
        HTTPStatus.NOT_FOUND,
        "not_found",
    )
    listed = await (await client.get("/api/v1/datasets", headers=outsider.headers)).json()
    assert listed == {"items": [], "next_cursor": None}
    assert await rows(client, owner, dataset["id"], "SELECT count(*) FROM tbl") == [[2]]


async def test_list_is_paginated(client: Client, owner: Caller) -> None:
    for name in ("a", "b", "c"):
        await created(client, owner, SAMPLE_CSV, name=name)
    first = await (await client.get("/api/v1/datasets?limit=2", headers=owner.headers)).json()
    assert [d["name"] for d in first["items"]] == ["a", "b"]
    assert first["items"][0]["versions"] is None
    second = await (
        await client.get(
            "/api/v1/datasets", params={"cursor": first["next_cursor"]}, headers=owner.headers
        )
    ).json()
    assert ([d["name"] for d in second["items"]], second["next_cursor"]) == (["c"], None)


async def test_query_caps_rows_and_says_so(client: Client, owner: Caller) -> None:
    dataset = await created(client, owner, SAMPLE_CSV)
    response = await query(client, owner, dataset["id"], "SELECT range AS n FROM range(5)", limit=3)
    body = await response.json()
    assert body == {
        "columns": [{"name": "n", "type": "LONG"}],
        "rows": [[0], [1], [2]],
        "truncated": True,
    }
    whole = await (await query(client, owner, dataset["id"], 'SELECT "first name" FROM tbl')).json()
    assert whole["truncated"] is False
