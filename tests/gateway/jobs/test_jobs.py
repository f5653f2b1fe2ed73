"""Jobs over HTTP: run, retry, fail, cancel, idempotency, rights and tenancy."""

from __future__ import annotations

from datetime import timedelta
from http import HTTPStatus

from gateway.keys import JOB_RUNNER
from tests.gateway.callers import Caller, Client, problem
from tests.gateway.jobs.conftest import (
    PUSH_SCRIPT,
    MovableClock,
    ThirdParty,
    create_job,
    job_connector,
    job_ids,
    job_of,
    queued,
    until,
    until_job,
)

BLOCKING_SCRIPT = """
httprequest.get('http://HOST/rows');
httprequest.get('http://HOST/block');
"""


async def runs_of(client: Client, caller: Caller, job_id: str) -> list[dict[str, object]]:
    """The job's runs (asserting 200)."""
    response = await client.get(f"/domo/writeback/v1/jobs/{job_id}/runs", headers=caller.headers)
    assert response.status == HTTPStatus.OK, await response.text()
    items: list[dict[str, object]] = (await response.json())["items"]
    return items


async def test_a_job_runs_its_script_and_succeeds(
    client: Client, owner: Caller, third_party: ThirdParty
) -> None:
    connector = await job_connector(client, owner, third_party, PUSH_SCRIPT)
    body = {"report": "push", "parameters": {"n": 7}}
    job_id = await queued(client, owner, connector["guid"], body)

    job = await until(client, owner, job_id, "succeeded", "failed")

    assert job["status"] == "succeeded", job
    assert job["attempts"] == 1
    assert job["version"] is None  # the owner's draft
    assert job["progress"]["http_calls"] == 1
    assert job["trigger"] == "api"
    assert job["finished_at"] is not None
    assert third_party.posts == [{"key": job_id, "n": 7}]
    runs = await runs_of(client, owner, job_id)
    assert [(r["kind"], r["status"]) for r in runs] == [("job", "success")]
    ended = await client.post(f"/domo/writeback/v1/jobs/{job_id}/cancel", headers=owner.headers)
    await problem(ended, HTTPStatus.CONFLICT, "conflict")


async def test_a_429_is_retried_after_its_retry_after(
    client: Client, owner: Caller, third_party: ThirdParty, clock: MovableClock
) -> None:
    third_party.plan = [(429, {"Retry-After": "120"})]
    connector = await job_connector(client, owner, third_party, PUSH_SCRIPT)
    job_id = await queued(client, owner, connector["guid"])
    failed_at = clock.now()

    waiting = await until_job(
        client, owner, job_id, lambda j: j["status"] == "queued" and j["attempts"] == 1
    )

    assert waiting["error"]["code"] == "upstream"
    assert waiting["next_attempt_at"] == (failed_at + timedelta(seconds=120)).isoformat().replace(
        "+00:00", "Z"
    )
    clock.advance(119)
    client.app[JOB_RUNNER].wake()
    assert (await job_of(client, owner, job_id))["status"] == "queued"
    clock.advance(1)
    client.app[JOB_RUNNER].wake()
    job = await until(client, owner, job_id, "succeeded", "failed")
    assert job["status"] == "succeeded"
    assert job["attempts"] == 2
    assert job["error"] is None
    assert [p["key"] for p in third_party.posts] == [job_id, job_id]
    assert list(third_party.applied) == [job_id]
    runs = await runs_of(client, owner, job_id)
    assert [r["status"] for r in runs] == ["failed", "success"]


async def test_an_upstream_that_keeps_failing_ends_failed_after_its_attempts(
    client: Client, owner: Caller, third_party: ThirdParty
) -> None:
    third_party.plan = [(503, {}), (500, {}), (502, {})]
    connector = await job_connector(client, owner, third_party, PUSH_SCRIPT)
    job_id = await queued(client, owner, connector["guid"])

    job = await until(client, owner, job_id, "succeeded", "failed")

    assert job["status"] == "failed"
    assert job["attempts"] == job["max_attempts"] == 3
    assert job["error"]["code"] == "upstream"
    assert job["error"]["message"] == "the API answered 502"
    assert len(await runs_of(client, owner, job_id)) == 3
    assert third_party.applied == {}


async def test_a_refusal_of_the_upstream_fails_at_once(
    client: Client, owner: Caller, third_party: ThirdParty
) -> None:
    third_party.plan = [(400, {})]
    connector = await job_connector(client, owner, third_party, PUSH_SCRIPT)
    job_id = await queued(client, owner, connector["guid"])

    job = await until(client, owner, job_id, "succeeded", "failed")

    assert (job["status"], job["attempts"]) == ("failed", 1)
    assert len(third_party.posts) == 1


async def test_cancel_stops_a_running_job(
    client: Client, owner: Caller, admin: Caller, third_party: ThirdParty
) -> None:
    connector = await job_connector(client, owner, third_party, BLOCKING_SCRIPT)
    job_id = await queued(client, owner, connector["guid"])
    try:
        await third_party.blocked.wait()
        running = await until_job(client, owner, job_id, lambda j: j["progress"]["http_calls"] == 1)
        assert running["status"] == "running"

        response = await client.post(
            f"/domo/writeback/v1/jobs/{job_id}/cancel", headers=admin.headers
        )
        assert response.status == HTTPStatus.OK
        assert (await response.json())["cancel_requested"] is True
        job = await until(client, owner, job_id, "cancelled", "succeeded", "failed")
    finally:
        third_party.release.set()

    assert job["status"] == "cancelled"
    assert job["error"]["code"] == "cancelled"
    again = await client.post(f"/domo/writeback/v1/jobs/{job_id}/cancel", headers=owner.headers)
    assert again.status == HTTPStatus.OK  # cancelling again changes nothing
    assert (await again.json())["status"] == "cancelled"
    # The killed worker was replaced: the next job runs.
    pushing = await job_connector(client, owner, third_party, PUSH_SCRIPT, key="next")
    next_id = await queued(client, owner, pushing["guid"])
    assert (await until(client, owner, next_id, "succeeded", "failed"))["status"] == "succeeded"


async def test_one_customer_waits_for_its_own_slot_not_for_others(
    client: Client, owner: Caller, outsider: Caller, third_party: ThirdParty
) -> None:
    """Per-customer concurrency (one job here): the owner's second job waits, is cancelled
    while queued, and another customer's job runs meanwhile (THREATS D3)."""
    blocking = await job_connector(client, owner, third_party, BLOCKING_SCRIPT)
    pushing = await job_connector(client, owner, third_party, PUSH_SCRIPT, key="push2")
    theirs = await job_connector(client, outsider, third_party, PUSH_SCRIPT)
    try:
        first = await queued(client, owner, blocking["guid"])
        await third_party.blocked.wait()
        waiting = await queued(client, owner, pushing["guid"])
        other = await queued(client, outsider, theirs["guid"])

        done = await until(client, outsider, other, "succeeded", "failed")
        still = await job_of(client, owner, waiting)
        cancel = await client.post(
            f"/domo/writeback/v1/jobs/{waiting}/cancel", headers=owner.headers
        )
        assert (await job_of(client, owner, first))["status"] == "running"
    finally:
        third_party.release.set()

    assert done["status"] == "succeeded"
    assert still["status"] == "queued"
    assert cancel.status == HTTPStatus.OK
    cancelled = await cancel.json()
    assert (cancelled["status"], cancelled["attempts"]) == ("cancelled", 0)
    assert [p["key"] for p in third_party.posts] == [other]
    assert (await until(client, owner, first, "succeeded", "failed"))["status"] == "succeeded"


async def test_the_same_idempotency_key_answers_the_same_job(
    client: Client, owner: Caller, third_party: ThirdParty
) -> None:
    connector = await job_connector(client, owner, third_party, PUSH_SCRIPT)
    guid = connector["guid"]

    first = await create_job(
        client, owner, guid, {"parameters": {"n": 1}}, **{"Idempotency-Key": "k-1"}
    )
    second = await create_job(
        client, owner, guid, {"parameters": {"n": 1}}, **{"Idempotency-Key": "k-1"}
    )
    other = await create_job(
        client, owner, guid, {"parameters": {"n": 2}}, **{"Idempotency-Key": "k-1"}
    )

    assert first.status == second.status == HTTPStatus.ACCEPTED
    job_id = (await first.json())["id"]
    assert (await second.json())["id"] == job_id
    assert second.headers["Idempotency-Replayed"] == "true"
    await problem(other, HTTPStatus.UNPROCESSABLE_ENTITY, "idempotency_key_reused")
    await until(client, owner, job_id, "succeeded", "failed")
    assert [job for job, _ in await job_ids(client)] == [job_id]
    assert len(third_party.posts) == 1


async def test_jobs_are_checked_before_they_are_queued(
    client: Client, owner: Caller, third_party: ThirdParty
) -> None:
    connector = await job_connector(client, owner, third_party, PUSH_SCRIPT)
    guid = connector["guid"]

    report = await create_job(client, owner, guid, {"report": "nope"})
    target = await create_job(client, owner, guid, {"send_to_dataset": True})
    account = await create_job(client, owner, guid, {"account_id": "no-such-account"})
    unknown = await create_job(client, owner, "no-such-guid")

    await problem(report, HTTPStatus.UNPROCESSABLE_ENTITY, "validation_failed")
    await problem(target, HTTPStatus.UNPROCESSABLE_ENTITY, "validation_failed")
    await problem(account, HTTPStatus.NOT_FOUND, "not_found")
    await problem(unknown, HTTPStatus.NOT_FOUND, "not_found")
    assert await job_ids(client) == []


async def test_jobs_are_seen_by_their_creator_and_admins_only(
    client: Client,
    owner: Caller,
    colleague: Caller,
    admin: Caller,
    outsider: Caller,
    third_party: ThirdParty,
) -> None:
    connector = await job_connector(client, owner, third_party, PUSH_SCRIPT)
    job_id = await queued(client, owner, connector["guid"])
    await until(client, owner, job_id, "succeeded", "failed")

    assert (await job_of(client, admin, job_id))["id"] == job_id
    assert len(await runs_of(client, admin, job_id)) == 1
    for stranger in (colleague, outsider):
        for path in (f"/domo/writeback/v1/jobs/{job_id}", f"/domo/writeback/v1/jobs/{job_id}/runs"):
            await problem(
                await client.get(path, headers=stranger.headers), HTTPStatus.NOT_FOUND, "not_found"
            )
        cancel = await client.post(
            f"/domo/writeback/v1/jobs/{job_id}/cancel", headers=stranger.headers
        )
        await problem(cancel, HTTPStatus.NOT_FOUND, "not_found")
    # Another customer's connector is not found; a colleague may not run the owner's draft.
    foreign = await create_job(client, outsider, connector["guid"])
    await problem(foreign, HTTPStatus.NOT_FOUND, "not_found")
    draft = await create_job(client, colleague, connector["guid"])
    await problem(draft, HTTPStatus.CONFLICT, "conflict")
    assert len(await job_ids(client)) == 1
