"""Pull jobs into datasets, schedules with a movable clock, and dataset triggers."""

from __future__ import annotations

from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any

from gateway.keys import ENGINE, JOB_RUNNER, SCHEDULES
from tests.gateway.callers import Caller, Client, problem
from tests.gateway.jobs.conftest import (
    PULL_SCRIPT,
    PUSH_SCRIPT,
    MovableClock,
    ThirdParty,
    create_job,
    job_connector,
    job_ids,
    queued,
    until,
)
from writeback.jobs.queue import JobQueue
from writeback.jobs.schedules import ScheduleService

CSV = "id,name\n1,Ann\n"


async def pull_connector(client: Client, caller: Caller, third_party: ThirdParty) -> dict[str, Any]:
    """A pull connector reading `/rows` (report `Opportunities`)."""
    return await job_connector(
        client,
        caller,
        third_party,
        PULL_SCRIPT,
        kind="connector",
        key="crm",
        name="CRM",
        reports=["Opportunities"],
    )


async def rows_of(client: Client, caller: Caller, dataset_id: str) -> list[list[Any]]:
    """`select * from tbl order by id` on the dataset."""
    response = await client.post(
        f"/api/v1/datasets/{dataset_id}/query",
        json={"sql": 'select "id", "name", "score", "when" from tbl order by "id"'},
        headers=caller.headers,
    )
    assert response.status == HTTPStatus.OK, await response.text()
    rows: list[list[Any]] = (await response.json())["rows"]
    return rows


async def test_a_pull_job_writes_its_datagrid_to_a_dataset_then_new_versions(
    client: Client, owner: Caller, third_party: ThirdParty
) -> None:
    third_party.rows = [
        {"id": 1, "name": "Ann", "score": 1.5, "when": "2024-01-02"},
        {"id": 2, "name": "Bo, Jr", "score": 2, "when": None},
    ]
    connector = await pull_connector(client, owner, third_party)
    body = {"report": "Opportunities", "send_to_dataset": True}

    first = await until(
        client, owner, await queued(client, owner, connector["guid"], body), "succeeded", "failed"
    )

    assert first["status"] == "succeeded", first
    assert first["progress"]["rows_read"] == first["progress"]["rows_written"] == 2
    dataset_id = first["dataset_id"]
    dataset = await (
        await client.get(f"/api/v1/datasets/{dataset_id}", headers=owner.headers)
    ).json()
    assert dataset["name"] == "CRM - Opportunities"
    assert [(c["name"], c["type"]) for c in dataset["columns"]] == [
        ("id", "LONG"),
        ("name", "STRING"),
        ("score", "DOUBLE"),
        ("when", "DATE"),
    ]
    assert await rows_of(client, owner, dataset_id) == [
        [1, "Ann", 1.5, "2024-01-02"],
        [2, "Bo, Jr", 2.0, None],
    ]

    third_party.rows = [{"id": 3, "name": "Cy", "score": 0.5, "when": "2025-05-05"}]
    second = await until(
        client, owner, await queued(client, owner, connector["guid"], body), "succeeded", "failed"
    )
    by_id = {"report": "Opportunities", "send_to_dataset": dataset_id}
    third_party.rows = [{"id": 4, "name": "Di", "score": 1, "when": "2025-06-06"}]
    third = await until(
        client, owner, await queued(client, owner, connector["guid"], by_id), "succeeded", "failed"
    )

    assert second["dataset_id"] == third["dataset_id"] == dataset_id
    assert await rows_of(client, owner, dataset_id) == [[4, "Di", 1.0, "2025-06-06"]]
    versions = (
        await (await client.get(f"/api/v1/datasets/{dataset_id}", headers=owner.headers)).json()
    )["versions"]
    assert [v["number"] for v in versions] == [3, 2, 1]


async def test_a_failed_pull_leaves_the_dataset_as_it_was(
    client: Client, owner: Caller, third_party: ThirdParty
) -> None:
    third_party.rows = [{"id": 1, "name": "Ann", "score": 1, "when": "2024-01-02"}]
    connector = await pull_connector(client, owner, third_party)
    body = {"report": "Opportunities", "send_to_dataset": True}
    first = await until(
        client, owner, await queued(client, owner, connector["guid"], body), "succeeded", "failed"
    )
    third_party.rows = [{"id": 2, "name": "Bo", "score": 2, "when": "2024-01-03"}, {"fail": True}]

    failed = await until(
        client, owner, await queued(client, owner, connector["guid"], body), "succeeded", "failed"
    )

    assert failed["status"] == "failed"
    assert failed["attempts"] == 1
    assert failed["error"]["code"] == "bad"
    assert failed["dataset_id"] is None
    assert await rows_of(client, owner, first["dataset_id"]) == [[1, "Ann", 1.0, "2024-01-02"]]


async def test_send_to_dataset_is_refused_for_other_customers_datasets_and_writebacks(
    client: Client, owner: Caller, outsider: Caller, third_party: ThirdParty
) -> None:
    theirs = await client.post(
        "/api/v1/datasets",
        params={"name": "theirs"},
        data=CSV,
        headers={**outsider.headers, "Content-Type": "text/csv"},
    )
    assert theirs.status == HTTPStatus.CREATED
    connector = await pull_connector(client, owner, third_party)
    pushing = await job_connector(client, owner, third_party, PUSH_SCRIPT)

    foreign = await create_job(
        client, owner, connector["guid"], {"send_to_dataset": (await theirs.json())["id"]}
    )
    writeback = await create_job(client, owner, pushing["guid"], {"send_to_dataset": True})

    await problem(foreign, HTTPStatus.NOT_FOUND, "not_found")
    await problem(writeback, HTTPStatus.UNPROCESSABLE_ENTITY, "validation_failed")
    assert await job_ids(client) == []


async def schedule(client: Client, caller: Caller, body: dict[str, Any]) -> Any:
    """`POST /api/v1/schedules`."""
    return await client.post("/api/v1/schedules", json=body, headers=caller.headers)


async def test_a_schedule_fires_once_per_due_time_in_its_time_zone(
    client: Client, owner: Caller, third_party: ThirdParty, clock: MovableClock
) -> None:
    connector = await job_connector(client, owner, third_party, PUSH_SCRIPT)
    clock.moment = datetime(2026, 6, 1, 5, 0, tzinfo=UTC)  # 07:00 in Paris (CEST)
    response = await schedule(
        client,
        owner,
        {"connector_guid": connector["guid"], "cron": "30 7 * * *", "timezone": "Europe/Paris"},
    )
    assert response.status == HTTPStatus.CREATED, await response.text()
    created = await response.json()
    assert created["next_run_at"] == "2026-06-01T05:30:00Z"
    service = client.app[SCHEDULES]
    # A second replica's scheduler on the same store.
    other = ScheduleService(
        client.app[ENGINE],
        client.app[SCHEDULES]._jobs,
        JobQueue(client.app[ENGINE], max_attempts=3),
        clock=clock.now,
    )

    assert await service.tick() == 0
    clock.advance(30 * 60)
    fired = await service.tick() + await other.tick()
    again = await service.tick() + await other.tick()

    assert (fired, again) == (1, 0)
    [(job_id, trigger)] = await job_ids(client)
    assert trigger == "schedule"
    client.app[JOB_RUNNER].wake()
    assert (await until(client, owner, job_id, "succeeded", "failed"))["status"] == "succeeded"
    listed = await (await client.get("/api/v1/schedules", headers=owner.headers)).json()
    assert [s["next_run_at"] for s in listed["items"]] == ["2026-06-02T05:30:00Z"]


async def test_schedules_are_checked_and_private(
    client: Client,
    owner: Caller,
    colleague: Caller,
    admin: Caller,
    outsider: Caller,
    third_party: ThirdParty,
) -> None:
    connector = await job_connector(client, owner, third_party, PUSH_SCRIPT)
    guid = connector["guid"]

    bad_cron = await schedule(client, owner, {"connector_guid": guid, "cron": "every day at 5"})
    bad_zone = await schedule(
        client, owner, {"connector_guid": guid, "cron": "0 5 * * *", "timezone": "Mars/Olympus"}
    )
    both = await schedule(
        client, owner, {"connector_guid": guid, "cron": "0 5 * * *", "dataset_id": "x"}
    )
    foreign = await schedule(client, outsider, {"connector_guid": guid, "cron": "0 5 * * *"})
    created = await schedule(client, owner, {"connector_guid": guid, "cron": "0 5 * * *"})

    await problem(bad_cron, HTTPStatus.UNPROCESSABLE_ENTITY, "validation_failed")
    await problem(bad_zone, HTTPStatus.UNPROCESSABLE_ENTITY, "validation_failed")
    await problem(both, HTTPStatus.UNPROCESSABLE_ENTITY, "validation_failed")
    await problem(foreign, HTTPStatus.NOT_FOUND, "not_found")
    schedule_id = (await created.json())["id"]
    path = f"/api/v1/schedules/{schedule_id}"
    for stranger in (colleague, outsider):
        await problem(
            await client.get(path, headers=stranger.headers), HTTPStatus.NOT_FOUND, "not_found"
        )
        await problem(
            await client.delete(path, headers=stranger.headers), HTTPStatus.NOT_FOUND, "not_found"
        )
        listed = await (await client.get("/api/v1/schedules", headers=stranger.headers)).json()
        assert listed["items"] == []
    assert (await client.get(path, headers=admin.headers)).status == HTTPStatus.OK
    assert (await client.delete(path, headers=owner.headers)).status == HTTPStatus.NO_CONTENT
    await problem(await client.get(path, headers=owner.headers), HTTPStatus.NOT_FOUND, "not_found")


async def test_a_new_version_of_a_dataset_triggers_one_job(
    client: Client, owner: Caller, outsider: Caller, third_party: ThirdParty
) -> None:
    uploaded = await client.post(
        "/api/v1/datasets",
        params={"name": "source"},
        data=CSV,
        headers={**owner.headers, "Content-Type": "text/csv"},
    )
    dataset_id = (await uploaded.json())["id"]
    connector = await job_connector(client, owner, third_party, PUSH_SCRIPT)
    body = {"connector_guid": connector["guid"], "dataset_id": dataset_id}
    foreign = await schedule(client, outsider, {**body, "connector_guid": connector["guid"]})
    response = await schedule(client, owner, {**body, "parameters": {"datasetId": dataset_id}})
    assert response.status == HTTPStatus.CREATED, await response.text()
    service = client.app[SCHEDULES]

    before = await service.tick()
    replaced = await client.put(
        f"/api/v1/datasets/{dataset_id}/data",
        params={"mode": "replace"},
        data="id,name\n2,Bo\n",
        headers={**owner.headers, "Content-Type": "text/csv"},
    )
    assert replaced.status == HTTPStatus.OK
    fired = await service.tick()
    after = await service.tick()

    await problem(foreign, HTTPStatus.NOT_FOUND, "not_found")
    assert (before, fired, after) == (0, 1, 0)
    [(job_id, trigger)] = await job_ids(client)
    assert trigger == "dataset"
    client.app[JOB_RUNNER].wake()
    assert (await until(client, owner, job_id, "succeeded", "failed"))["status"] == "succeeded"
