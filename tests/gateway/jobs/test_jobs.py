"""Jobs over HTTP: run, retry, fail, cancel, idempotency, rights and tenancy."""

from __future__ import annotations

from http import HTTPStatus

from tests.gateway.callers import Caller, Client
from tests.gateway.jobs.conftest import (
    PUSH_SCRIPT,
    ThirdParty,
    job_connector,
    queued,
    until,
)


async def test_a_job_runs_its_script_and_succeeds(
    client: Client, owner: Caller, third_party: ThirdParty
) -> None:
    connector = await job_connector(client, owner, third_party, PUSH_SCRIPT)
    job_id = await queued(
        client, owner, connector["guid"], {"report": "push", "parameters": {"n": 7}}
    )

    job = await until(client, owner, job_id, "succeeded", "failed")

    assert job["status"] == "succeeded", job
    assert job["attempts"] == 1
    assert job["version"] is None  # the owner's draft
    assert job["progress"]["http_calls"] == 1
    assert job["finished_at"] is not None
    assert third_party.posts == [{"key": job_id, "n": 7}]
    runs = await client.get(f"/domo/writeback/v1/jobs/{job_id}/runs", headers=owner.headers)
    assert runs.status == HTTPStatus.OK
    items = (await runs.json())["items"]
    assert [(r["kind"], r["status"]) for r in items] == [("job", "success")]
