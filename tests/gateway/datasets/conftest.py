"""Helpers of the dataset endpoint tests: uploads and file hashes."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.web import Application

from gateway.keys import SETTINGS
from gateway.settings import Settings
from tests.gateway.callers import Caller, Client

CSV = "text/csv"
SAMPLE_CSV = (
    "id,zip,amount,when,flag,first name\n"
    "1,00123,1.5,2024-01-02,true,Ann\n"
    '2,04567,2.25,2024-02-03,false,"Bo, Jr"\n'
)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """One script worker, and a short SQL time limit for the hostile statements."""
    return Settings(data_dir=tmp_path / "data", workers=1, sql_timeout_s=2.0)


async def upload(
    client: Client,
    caller: Caller,
    body: bytes | str | AsyncIterator[bytes],
    *,
    name: str = "sales",
    content_type: str = CSV,
    **query: str,
) -> Any:
    """`POST /api/v1/datasets?name=...` with `body` as the file."""
    return await client.post(
        "/api/v1/datasets",
        params={"name": name, **query},
        data=body,
        headers={**caller.headers, "Content-Type": content_type},
    )


async def created(client: Client, caller: Caller, body: bytes | str, **options: Any) -> Any:
    """Upload a dataset and return its body (asserting 201)."""
    response = await upload(client, caller, body, **options)
    assert response.status == 201, await response.text()
    return await response.json()


async def query(client: Client, caller: Caller, dataset_id: str, sql: str, **extra: Any) -> Any:
    """`POST /api/v1/datasets/{id}/query`."""
    return await client.post(
        f"/api/v1/datasets/{dataset_id}/query", json={"sql": sql, **extra}, headers=caller.headers
    )


def dataset_root(app: Application) -> Path:
    """The folder every dataset's files live under."""
    return app[SETTINGS].data_dir / "datasets"


def file_hashes(root: Path) -> dict[str, str]:
    """The SHA-256 of every file under `root`, by relative path."""
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }
