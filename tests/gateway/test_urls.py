"""A URL that decodes to a NUL names nothing: 404 or 422, never PostgreSQL's 500."""

from __future__ import annotations

from http import HTTPStatus
from pathlib import Path

import pytest

from gateway.settings import Settings
from tests.gateway.callers import Caller, Client, problem


@pytest.fixture
def settings(tmp_path: Path, db_url: str) -> Settings:
    """The app on each backend (PostgreSQL refuses NUL in text; SQLite stores it)."""
    return Settings(data_dir=tmp_path / "data", workers=1, database_url=db_url)


@pytest.mark.parametrize(
    "path", ["/api/v1/connectors/a%00b", "/api/v1/users/a%00b", "/api/v1/runs/a%00b"]
)
async def test_a_nul_in_the_path_is_not_found(client: Client, owner: Caller, path: str) -> None:
    await problem(await client.get(path, headers=owner.headers), HTTPStatus.NOT_FOUND, "not_found")


@pytest.mark.parametrize("query", ["cursor=a%00b", "connector=a%00b", "a%00=1"])
async def test_a_nul_in_the_query_is_refused(client: Client, owner: Caller, query: str) -> None:
    body = await problem(
        await client.get(f"/api/v1/runs?{query}", headers=owner.headers),
        HTTPStatus.UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    assert body["errors"][0]["loc"][0] == "query"
