"""Keyset pagination by id."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.store import paginate
from gateway.store.tables import users
from tests.dbfixtures import make_customer, make_user


async def _walk(
    engine: AsyncEngine, customer_id: str, limit: int, *, descending: bool = False
) -> list[list[str]]:
    query = select(users.c.id, users.c.email).where(users.c.customer_id == customer_id)
    pages: list[list[str]] = []
    cursor: str | None = None
    async with engine.connect() as connection:
        while True:
            rows, cursor = await paginate(
                connection, query, users.c.id, limit, cursor, descending=descending
            )
            pages.append([row.id for row in rows])
            if cursor is None:
                return pages


async def test_pages_follow_creation_order_and_end_with_no_cursor(engine: AsyncEngine) -> None:
    async with engine.begin() as connection:
        acme, other = await make_customer(connection), await make_customer(connection)
        made = [await make_user(connection, acme) for _ in range(25)]
        await make_user(connection, other)
    pages = await _walk(engine, acme, 10)
    assert [len(page) for page in pages] == [10, 10, 5]
    assert [user for page in pages for user in page] == made
    newest_first = await _walk(engine, acme, 10, descending=True)
    assert [user for page in newest_first for user in page] == made[::-1]


async def test_an_exactly_full_last_page_has_no_next_cursor(engine: AsyncEngine) -> None:
    async with engine.begin() as connection:
        acme = await make_customer(connection)
        for _ in range(4):
            await make_user(connection, acme)
    assert [len(page) for page in await _walk(engine, acme, 2)] == [2, 2]
    assert [len(page) for page in await _walk(engine, acme, 4)] == [4]


async def test_an_empty_list_is_one_empty_page(engine: AsyncEngine) -> None:
    async with engine.begin() as connection:
        acme = await make_customer(connection)
    assert await _walk(engine, acme, 50) == [[]]


async def test_the_limit_must_be_positive(engine: AsyncEngine) -> None:
    async with engine.connect() as connection:
        with pytest.raises(ValueError, match="positive"):
            await paginate(connection, select(users.c.id), users.c.id, 0, None)
