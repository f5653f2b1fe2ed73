"""The dataset service without HTTP: versions read while replaced, paged cursors, the sweep."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.identity.principal import Principal, Role
from gateway.store.tables import utcnow
from tests.dbfixtures import make_customer, make_user
from writeback.datasets.load import FileFormat
from writeback.datasets.sandbox import SandboxLimits, SqlSandbox
from writeback.datasets.service import DatasetService, Upload, WriteMode
from writeback.datasets.storage import DatasetFiles


async def chunks(text: str) -> AsyncIterator[bytes]:
    yield text.encode()


def csv(text: str) -> Upload:
    return Upload(FileFormat.CSV, chunks(text))


@pytest.fixture
async def service(engine: AsyncEngine, tmp_path: Path) -> AsyncIterator[DatasetService]:
    sandbox = SqlSandbox(SandboxLimits(timeout_s=10))
    yield DatasetService(
        engine, DatasetFiles(tmp_path / "datasets", grace_s=60), sandbox, max_upload_bytes=10**8
    )
    sandbox.close()


@pytest.fixture
async def principal(engine: AsyncEngine) -> Principal:
    async with engine.begin() as connection:
        customer_id = await make_customer(connection)
        user_id = await make_user(connection, customer_id)
    return Principal(user_id, customer_id, Role.MEMBER)


async def test_a_reader_keeps_its_version_while_a_new_one_is_published(
    service: DatasetService, principal: Principal
) -> None:
    rows = "".join(f"{n}\n" for n in range(2500))
    dataset = await service.create(principal, "numbers", csv("n\n" + rows))
    async with (
        service.reading(principal, dataset.id) as (_, table),
        service.sandbox.cursor(table, "SELECT n FROM tbl ORDER BY n") as cursor,
    ):
        first = await cursor.fetch(1000)
        await service.write(principal, dataset.id, WriteMode.REPLACE, csv("n\n-1\n"))
        # The sweep right after publishing keeps the replaced files (pinned, and in grace).
        assert all(part.exists() for part in table.parts)
        pages = [first]
        while page := await cursor.fetch(1000):
            pages.append(page)
    assert [len(p) for p in pages] == [1000, 1000, 500]
    assert pages[-1][-1] == [2499]
    answer = await service.query(principal, dataset.id, "SELECT * FROM tbl", max_rows=10)
    assert answer.rows == [[-1]]


async def test_the_sweep_removes_replaced_versions_and_dead_uploads_after_the_grace(
    service: DatasetService, principal: Principal
) -> None:
    dataset = await service.create(principal, "numbers", csv("n\n1\n"))
    await service.write(principal, dataset.id, WriteMode.REPLACE, csv("n\n2\n"))
    folder = service.files.folder(principal.customer_id, dataset.id)
    # What a gateway killed mid-upload leaves behind.
    (folder / "upload-killed.tmp").write_bytes(b"n\n3\n")
    (folder / "part-killed.duckdb.tmp").write_bytes(b"half")
    assert len(list(folder.iterdir())) == 4
    assert await service.collect() == 0  # everything is within the grace period
    later = utcnow() + timedelta(seconds=120)
    assert await service.collect(now=later) == 3
    current = await service.get(principal, dataset.id)
    assert [p.file for p in current.current.parts] == [p.name for p in folder.iterdir()]
    assert [v.number for v in current.versions] == [2]
    answer = await service.query(principal, dataset.id, "SELECT * FROM tbl", max_rows=10)
    assert answer.rows == [[2]]


async def test_many_appends_are_merged_into_one_part(
    service: DatasetService, principal: Principal
) -> None:
    dataset = await service.create(principal, "numbers", csv("n\n0\n"))
    for n in range(1, 17):
        dataset = await service.write(principal, dataset.id, WriteMode.APPEND, csv(f"n\n{n}\n"))
    assert len(dataset.current.parts) == 1
    assert dataset.current.row_count == 17
    answer = await service.query(principal, dataset.id, "SELECT list(n) FROM tbl", max_rows=1)
    assert answer.rows == [["[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16]"]]


async def test_a_deleted_dataset_goes_after_the_grace(
    service: DatasetService, principal: Principal
) -> None:
    dataset = await service.create(principal, "numbers", csv("n\n1\n"))
    folder = service.files.folder(principal.customer_id, dataset.id)
    await service.delete(principal, dataset.id)
    assert await service.collect() == 0
    assert await service.collect(now=utcnow() + timedelta(seconds=120)) == 1
    assert not folder.exists()
