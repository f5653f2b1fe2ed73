"""Runs stored by the group-commit writer: this process reads its own runs before they commit."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, cast

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.connectors.runs import RunService, StoredRun, run_writer
from gateway.connectors.service import ConnectorService
from gateway.connectors.tables import runs
from gateway.errors import NotFound
from gateway.identity.principal import Principal
from gateway.store.batching import BatchLimits
from gateway.store.ids import new_id
from gateway.store.tables import utcnow
from runtime.model import RunMode, RunResult, RunStatus
from tests.gateway.connectors.conftest import People


@pytest.fixture
async def service(engine: AsyncEngine) -> AsyncIterator[RunService]:
    """A run service whose writer waits for a flush (a long interval, large batches)."""
    writer = run_writer(engine, limits=BatchLimits(interval_s=3600.0))
    writer.start()
    # Storing and reading runs needs neither workers nor egress.
    yield RunService(
        engine, ConnectorService(engine), cast(Any, None), cast(Any, None), writer=writer
    )
    await writer.close()


def make_run(caller: Principal, guid: str = "guid-1") -> StoredRun:
    return StoredRun(
        id=new_id(),
        customer_id=caller.customer_id,
        user_id=caller.user_id,
        connector_id="connector-1",
        connector_guid=guid,
        kind="dev",
        mode=RunMode.PROCESS,
        result=RunResult(status=RunStatus.SUCCESS, logs=["hello"], duration_ms=1.5),
        account_resolution={"source": "none"},
        created_at=utcnow(),
        cut_off_host="api.example.com",
    )


async def count(engine: AsyncEngine) -> int:
    async with engine.connect() as connection:
        return int((await connection.execute(select(func.count()).select_from(runs))).scalar_one())


async def test_a_pending_run_is_read_here_under_the_stored_rules(
    service: RunService, people: People, engine: AsyncEngine
) -> None:
    run = make_run(people.owner)
    await service._store(run)
    assert await count(engine) == 0
    pending = await service.get_run(people.owner, run.id)
    assert pending.cut_off_host is None  # as it reads once stored
    assert (await service.get_run(people.admin, run.id)).id == run.id
    for other in (people.colleague, people.outsider):
        with pytest.raises(NotFound):
            await service.get_run(other, run.id)
    assert [r.id for r in (await service.list_runs(people.owner, None, 10, None))[0]] == [run.id]
    assert (await service.list_runs(people.colleague, None, 10, None))[0] == []
    assert (await service.list_runs(people.owner, "other-guid", 10, None))[0] == []

    await service.flush_runs()
    assert await count(engine) == 1
    assert await service.get_run(people.owner, run.id) == pending


async def test_pages_merge_stored_and_pending_runs_newest_first(
    service: RunService, people: People
) -> None:
    made = [make_run(people.owner) for _ in range(5)]
    for run in made[:3]:
        await service._store(run)
    await service.flush_runs()
    for run in made[3:]:
        await service._store(run)
    newest_first = [run.id for run in reversed(made)]
    first, cursor = await service.list_runs(people.owner, None, 3, None)
    assert [r.id for r in first] == newest_first[:3]
    assert cursor == newest_first[2]
    second, last = await service.list_runs(people.owner, None, 3, cursor)
    assert [r.id for r in second] == newest_first[3:]
    assert last is None


async def test_without_a_running_writer_a_run_is_stored_at_once(
    engine: AsyncEngine, people: People
) -> None:
    service = RunService(engine, ConnectorService(engine), cast(Any, None), cast(Any, None))
    await service._store(make_run(people.owner))
    assert await count(engine) == 1
