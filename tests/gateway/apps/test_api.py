"""Apps over HTTP: upload by manifest or zip, tenancy (I2), refused zips store nothing (I6)."""

from __future__ import annotations

import io
import os
import zipfile
from collections.abc import Callable
from http import HTTPStatus
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from gateway.apps.tables import app_aliases, app_files, apps
from gateway.keys import ENGINE
from gateway.settings import Settings
from tests.gateway.apps.conftest import manifest
from tests.gateway.apps.zips import lying_size, make_zip, with_duplicate
from tests.gateway.callers import Caller, Client, problem

ZIP = {"Content-Type": "application/zip"}


async def _upload(client: Client, caller: Caller, document: dict[str, Any]) -> dict[str, Any]:
    response = await client.post("/api/v1/apps", headers=caller.headers, json=document)
    assert response.status == HTTPStatus.CREATED, await response.text()
    created: dict[str, Any] = await response.json()
    assert response.headers["Location"] == f"/api/v1/apps/{created['id']}"
    return created


async def _count(client: Client, table: Any) -> int:
    async with client.app[ENGINE].connect() as connection:
        return (await connection.execute(select(func.count()).select_from(table))).scalar_one()


@pytest.mark.usefixtures("providers")
async def test_a_manifest_upload_is_kept_and_readable(client: Client, owner: Caller) -> None:
    created = await _upload(client, owner, manifest(fullpage=True, proxyId="p-1"))
    assert created["name"] == "Sales board"
    assert created["owner_id"] == owner.user_id
    assert (created["file_count"], created["size"]) == (0, 0)
    assert created["manifest"]["accountMapping"][1] == {"alias": "books", "dataProviderKey": "erp"}
    assert created["manifest"]["proxyId"] == "p-1"
    read = await client.get(f"/api/v1/apps/{created['id']}", headers=owner.headers)
    assert await read.json() == created
    listed = await (await client.get("/api/v1/apps", headers=owner.headers)).json()
    assert listed == {"items": [created], "next_cursor": None}


@pytest.mark.usefixtures("providers")
async def test_a_global_connector_key_is_visible_to_every_customer(
    client: Client, owner: Caller
) -> None:
    document = manifest(accountMapping=[{"alias": "w", "dataProviderKey": "world"}])
    assert (await _upload(client, owner, document))["manifest"]["accountMapping"][0]["alias"] == "w"


@pytest.mark.usefixtures("providers")
async def test_keys_the_customer_cannot_see_are_named(client: Client, owner: Caller) -> None:
    document = manifest(
        accountMapping=[
            {"alias": "a", "dataProviderKey": "crm"},
            {"alias": "b", "dataProviderKey": "hidden"},  # globex's own connector
            {"alias": "c", "dataProviderKey": "nowhere"},
        ]
    )
    response = await client.post("/api/v1/apps", headers=owner.headers, json=document)
    body = await problem(response, HTTPStatus.UNPROCESSABLE_ENTITY, "validation_failed")
    assert [error["loc"] for error in body["errors"]] == [
        ["accountMapping", 1, "dataProviderKey"],
        ["accountMapping", 2, "dataProviderKey"],
    ]
    assert await _count(client, apps) == 0


@pytest.mark.usefixtures("providers")
async def test_a_bad_manifest_names_each_field(client: Client, owner: Caller) -> None:
    response = await client.post(
        "/api/v1/apps",
        headers=owner.headers,
        json={"version": "", "accountMapping": [{"alias": "x/y", "dataProviderKey": "crm"}]},
    )
    body = await problem(response, HTTPStatus.UNPROCESSABLE_ENTITY, "validation_failed")
    assert sorted(str(error["loc"]) for error in body["errors"]) == sorted(
        str(loc) for loc in (["name"], ["version"], ["accountMapping", 0, "alias"])
    )


@pytest.mark.usefixtures("providers")
async def test_a_zip_upload_stores_its_files(client: Client, owner: Caller) -> None:
    data = make_zip(
        {"index.html": b"<h1>Sales</h1>", "js/app.js": b"domo.get('/data/v1/sales');"},
        manifest=manifest(),
    )
    response = await client.post("/api/v1/apps", headers={**owner.headers, **ZIP}, data=data)
    assert response.status == HTTPStatus.CREATED, await response.text()
    created = await response.json()
    assert (created["file_count"], created["size"]) == (2, 14 + 27)
    async with client.app[ENGINE].connect() as connection:
        stored = dict(
            (await connection.execute(select(app_files.c.path, app_files.c.content))).all()
        )
    assert stored == {"index.html": b"<h1>Sales</h1>", "js/app.js": b"domo.get('/data/v1/sales');"}


async def test_a_bad_manifest_in_a_zip_names_each_field(client: Client, owner: Caller) -> None:
    data = make_zip({"index.html": b"x"}, manifest={"name": "n", "fullpage": 3})
    response = await client.post("/api/v1/apps", headers={**owner.headers, **ZIP}, data=data)
    body = await problem(response, HTTPStatus.UNPROCESSABLE_ENTITY, "validation_failed")
    assert sorted(str(e["loc"]) for e in body["errors"]) == [str(["fullpage"]), str(["version"])]


async def test_a_zip_whose_manifest_is_not_json_is_refused(client: Client, owner: Caller) -> None:
    buffer = make_zip({"manifest.json": b"{not json"}, manifest=None)
    response = await client.post("/api/v1/apps", headers={**owner.headers, **ZIP}, data=buffer)
    await problem(response, HTTPStatus.BAD_REQUEST, "invalid_json")


def _dna(size: int) -> bytes:
    """Bytes of four letters at random: they deflate about four times, far from a bomb."""
    return os.urandom(size).translate(bytes(b"ACGT"[i % 4] for i in range(256)))


def _tree(root: Path) -> set[Path]:
    return set(root.rglob("*"))


# Each case builds its zip when it runs (the large ones take a moment).
HOSTILE: dict[str, tuple[Callable[[], bytes], str, str]] = {
    "traversal": (lambda: make_zip({"../../evil.js": b"x"}), "app_bundle_refused", "'..'"),
    "absolute": (lambda: make_zip({"/tmp/evil.js": b"x"}), "app_bundle_refused", "absolute"),
    "symlink": (
        lambda: make_zip({}, links={"index.html": "/etc/passwd"}),
        "app_bundle_refused",
        "links",
    ),
    "duplicate": (lambda: with_duplicate("index.html"), "app_bundle_refused", "twice"),
    # 15 MiB of zeros deflate to about 15 KiB: within the size caps, a ratio near 1,000.
    "bomb by ratio": (lambda: make_zip({"z.bin": bytes(15 << 20)}), "payload_too_large", "times"),
    # 17 MiB at a ratio near 4: past the 16 MiB per-file cap, nowhere near the ratio cap.
    "bomb by size": (
        lambda: make_zip({"big.txt": _dna(17 << 20)}),
        "payload_too_large",
        "inflates to more than 16777216 bytes",
    ),
    "too many files": (
        lambda: make_zip({f"f{i}.txt": b"x" for i in range(1001)}),
        "payload_too_large",
        "more than 1000 files",
    ),
    "lying size": (
        lambda: lying_size("index.html", b"<p>" + b"y" * 5000 + b"</p>", 10),
        "app_bundle_refused",
        "damaged",
    ),
    "not a zip": (lambda: b"PK\x03\x04garbage", "app_bundle_refused", "not a zip"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
async def test_a_hostile_zip_is_refused_and_nothing_is_written(
    client: Client, owner: Caller, settings: Settings, tmp_path: Path, case: str
) -> None:
    build, code, reason = HOSTILE[case]
    data = build()
    assert case == "not a zip" or zipfile.is_zipfile(io.BytesIO(data))
    before = _tree(tmp_path)
    response = await client.post(
        "/api/v1/apps", headers={**owner.headers, **ZIP}, data=io.BytesIO(data)
    )
    status = HTTPStatus.REQUEST_ENTITY_TOO_LARGE if code == "payload_too_large" else 422
    assert reason in (await problem(response, HTTPStatus(status), code))["detail"]
    assert [await _count(client, table) for table in (apps, app_files, app_aliases)] == [0, 0, 0]
    # Nothing on disk either: no file appeared but the database's own (journal, WAL).
    new = _tree(tmp_path) - before
    assert all(path.parent == settings.data_dir and ".db" in path.name for path in new), new


async def test_another_type_of_body_is_refused(client: Client, owner: Caller) -> None:
    response = await client.post(
        "/api/v1/apps", headers={**owner.headers, "Content-Type": "text/plain"}, data=b"{}"
    )
    await problem(response, HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")


@pytest.mark.usefixtures("providers")
async def test_another_customers_app_is_not_found_anywhere(
    client: Client, owner: Caller, outsider: Caller
) -> None:
    app_id = (await _upload(client, owner, manifest()))["id"]
    instance = await client.post(f"/api/v1/apps/{app_id}/instances", headers=owner.headers, json={})
    iid = (await instance.json())["id"]
    base = f"/api/v1/apps/{app_id}"
    attempts = [
        ("GET", base, None),
        ("DELETE", base, None),
        ("POST", f"{base}/instances", {}),
        ("GET", f"{base}/instances", None),
        ("GET", f"{base}/instances/{iid}/accounts", None),
        ("PUT", f"{base}/instances/{iid}/accounts/sales", {"account_id": "x"}),
    ]
    for method, path, body in attempts:
        response = await client.request(method, path, headers=outsider.headers, json=body)
        await problem(response, HTTPStatus.NOT_FOUND, "not_found")
    listed = await (await client.get("/api/v1/apps", headers=outsider.headers)).json()
    assert listed["items"] == []


@pytest.mark.usefixtures("providers")
async def test_delete_is_for_the_uploader_and_admins_and_takes_everything(
    client: Client, owner: Caller, colleague: Caller, admin: Caller
) -> None:
    data = make_zip({"index.html": b"x"}, manifest=manifest())
    created = await client.post("/api/v1/apps", headers={**owner.headers, **ZIP}, data=data)
    app_id = (await created.json())["id"]
    await client.post(f"/api/v1/apps/{app_id}/instances", headers=colleague.headers)
    refused = await client.delete(f"/api/v1/apps/{app_id}", headers=colleague.headers)
    await problem(refused, HTTPStatus.FORBIDDEN, "forbidden")
    deleted = await client.delete(f"/api/v1/apps/{app_id}", headers=admin.headers)
    assert deleted.status == HTTPStatus.NO_CONTENT
    assert [await _count(client, table) for table in (apps, app_files, app_aliases)] == [0, 0, 0]
    gone = await client.get(f"/api/v1/apps/{app_id}", headers=owner.headers)
    await problem(gone, HTTPStatus.NOT_FOUND, "not_found")


@pytest.mark.usefixtures("providers")
async def test_a_user_who_uploaded_an_app_is_not_deleted_with_it(
    client: Client, owner: Caller, colleague: Caller, admin: Caller
) -> None:
    await _upload(client, colleague, manifest())
    response = await client.delete(f"/api/v1/users/{colleague.user_id}", headers=admin.headers)
    await problem(response, HTTPStatus.CONFLICT, "conflict")
    assert await _count(client, apps) == 1
