"""The identity tables' constraints and timestamps hold on both backends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError, StatementError
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.store import new_id, utcnow
from gateway.store.tables import api_tokens, customers, users
from tests.dbfixtures import make_customer, make_user


def _token_values(customer_id: str, user_id: str) -> dict[str, object]:
    return {
        "id": new_id(),
        "customer_id": customer_id,
        "user_id": user_id,
        "name": "ci",
        "token_hash": new_id().replace("-", "") + "0" * 32,
        "created_at": utcnow(),
    }


async def test_an_email_is_unique_within_a_customer_only(engine: AsyncEngine) -> None:
    async with engine.begin() as connection:
        acme, globex = await make_customer(connection), await make_customer(connection)
        await make_user(connection, acme, email="ann@example.com")
        await make_user(connection, globex, email="ann@example.com")
    with pytest.raises(IntegrityError):
        async with engine.begin() as connection:
            await make_user(connection, acme, email="ann@example.com")
    async with engine.connect() as connection:
        count = await connection.scalar(select(func.count()).select_from(users))
    assert count == 2


async def test_a_customer_name_is_unique(engine: AsyncEngine) -> None:
    async with engine.begin() as connection:
        await make_customer(connection, "acme")
    with pytest.raises(IntegrityError):
        async with engine.begin() as connection:
            await make_customer(connection, "acme")


async def test_foreign_keys_are_enforced(engine: AsyncEngine) -> None:
    with pytest.raises(IntegrityError):
        async with engine.begin() as connection:
            await make_user(connection, new_id())


async def test_a_token_belongs_to_its_users_customer(engine: AsyncEngine) -> None:
    async with engine.begin() as connection:
        acme, globex = await make_customer(connection), await make_customer(connection)
        ann = await make_user(connection, acme)
        await connection.execute(insert(api_tokens).values(_token_values(acme, ann)))
    with pytest.raises(IntegrityError):
        async with engine.begin() as connection:
            await connection.execute(insert(api_tokens).values(_token_values(globex, ann)))


async def test_a_users_tokens_go_with_the_user(engine: AsyncEngine) -> None:
    async with engine.begin() as connection:
        acme = await make_customer(connection)
        ann = await make_user(connection, acme)
        await connection.execute(insert(api_tokens).values(_token_values(acme, ann)))
        await connection.execute(delete(users).where(users.c.id == ann))
        assert await connection.scalar(select(func.count()).select_from(api_tokens)) == 0


async def test_a_customer_with_users_cannot_be_deleted(engine: AsyncEngine) -> None:
    async with engine.begin() as connection:
        acme = await make_customer(connection)
        await make_user(connection, acme)
    with pytest.raises(IntegrityError):
        async with engine.begin() as connection:
            await connection.execute(delete(customers).where(customers.c.id == acme))


async def test_roles_are_limited_to_the_known_ones(engine: AsyncEngine) -> None:
    async with engine.begin() as connection:
        acme = await make_customer(connection)
        for role in ("member", "admin", "platform_admin"):
            await make_user(connection, acme, role=role)
    with pytest.raises(IntegrityError):
        async with engine.begin() as connection:
            await make_user(connection, acme, role="root")


async def test_ids_and_creation_times_default_in_python(engine: AsyncEngine) -> None:
    before = utcnow()
    async with engine.begin() as connection:
        made = await connection.execute(insert(customers).values(name="acme"))
        assert made.inserted_primary_key is not None
        customer_id = made.inserted_primary_key[0]
        row = (await connection.execute(select(customers))).one()
    assert row.id == customer_id
    assert before <= row.created_at <= utcnow()


async def test_timestamps_round_trip_as_aware_utc(engine: AsyncEngine) -> None:
    moment = datetime(2024, 2, 29, 23, 59, 58, 123456, tzinfo=UTC)
    elsewhere = datetime(2024, 3, 1, 1, 29, 58, 123456, tzinfo=timezone(timedelta(hours=1.5)))
    async with engine.begin() as connection:
        acme = await make_customer(connection)
        ann = await make_user(connection, acme)
        token = _token_values(acme, ann) | {"created_at": moment, "last_used_at": elsewhere}
        await connection.execute(insert(api_tokens).values(token))
        row = (await connection.execute(select(api_tokens))).one()
    assert row.created_at == moment
    assert row.created_at.tzinfo is UTC
    assert row.last_used_at == elsewhere  # the same instant ...
    assert row.last_used_at.utcoffset() == timedelta(0)  # ... read back in UTC
    assert row.revoked_at is None


async def test_timestamps_compare_in_sql_by_instant(engine: AsyncEngine) -> None:
    moment = utcnow()
    async with engine.begin() as connection:
        acme = await make_customer(connection)
        ann = await make_user(connection, acme)
        await connection.execute(
            insert(api_tokens).values(_token_values(acme, ann) | {"created_at": moment})
        )
        # The same instant written in another zone: SQLite must still compare it correctly.
        later = (moment + timedelta(microseconds=1)).astimezone(timezone(timedelta(hours=-7)))
        earlier = (moment - timedelta(seconds=1)).astimezone(timezone(timedelta(hours=9)))
        older = select(func.count()).where(api_tokens.c.created_at < later)
        newer = select(func.count()).where(api_tokens.c.created_at > earlier)
        assert await connection.scalar(older) == 1
        assert await connection.scalar(newer) == 1


async def test_naive_timestamps_are_refused(engine: AsyncEngine) -> None:
    async with engine.begin() as connection:
        acme = await make_customer(connection)
        with pytest.raises(StatementError, match="naive datetime"):
            await connection.execute(
                update(customers)
                .where(customers.c.id == acme)
                .values(created_at=datetime(2024, 1, 1))  # naive: the point of the test
            )
