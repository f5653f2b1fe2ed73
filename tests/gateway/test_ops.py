"""Operations endpoints: probes and scrapers get their answer; readiness asks the database."""

from __future__ import annotations

import shutil
from http import HTTPStatus

import pytest

from gateway.keys import ENGINE, SETTINGS
from tests.gateway.callers import Client, problem

PROBES = ("/healthz", "/readyz", "/metrics", "/openapi.yaml")


@pytest.mark.parametrize("path", PROBES)
@pytest.mark.parametrize(
    "authorization",
    ["Bearer gw_" + "x" * 43, "Bearer nonsense", "Basic dXNlcjpwYXNz", "Bearer "],
)
async def test_probes_answer_whatever_authorization_they_carry(
    client: Client, path: str, authorization: str
) -> None:
    response = await client.get(path, headers={"Authorization": authorization})
    assert response.status == HTTPStatus.OK, await response.text()


async def test_a_bad_token_is_still_refused_elsewhere(client: Client) -> None:
    response = await client.get("/api/v1/me", headers={"Authorization": "Bearer nonsense"})
    await problem(response, HTTPStatus.UNAUTHORIZED, "unauthenticated")


async def test_readyz_is_503_when_the_database_does_not_answer(client: Client) -> None:
    assert (await client.get("/readyz")).status == HTTPStatus.OK
    # The data volume goes away: the open connection is closed and a new one cannot be made.
    shutil.rmtree(client.app[SETTINGS].data_dir)
    await client.app[ENGINE].dispose()
    body = await problem(
        await client.get("/readyz"), HTTPStatus.SERVICE_UNAVAILABLE, "service_unavailable"
    )
    assert body["detail"] == "the database does not answer"
    # The process itself is still up.
    assert (await client.get("/healthz")).status == HTTPStatus.OK
