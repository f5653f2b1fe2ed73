"""Keyset pagination by id: the cursor of a page is the last id it showed."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVarTuple

from sqlalchemy import ColumnElement, Row, Select
from sqlalchemy.ext.asyncio import AsyncConnection

Ts = TypeVarTuple("Ts")


async def paginate(
    connection: AsyncConnection,
    query: Select[*Ts],
    id_column: ColumnElement[str],
    limit: int,
    cursor: str | None,
    *,
    descending: bool = False,
) -> tuple[Sequence[Row[*Ts]], str | None]:
    """One page of `query` in id order, after `cursor`, and the cursor of the next page.

    `query` must select `id_column` and must not be ordered or limited itself. Ids are
    time-ordered (`gateway.store.ids`), so id order is creation order (newest first with
    `descending`). The next cursor is None on the last page; an unknown cursor simply
    continues after that value, so cursors need no signature.

    Raises:
        ValueError: `limit` is not positive.
    """
    if limit < 1:
        raise ValueError(f"page limit must be positive, not {limit}")
    if cursor is not None:
        query = query.where(id_column < cursor if descending else id_column > cursor)
    query = query.order_by(id_column.desc() if descending else id_column.asc())
    # One row more than asked tells whether another page exists without a COUNT.
    rows = (await connection.execute(query.limit(limit + 1))).all()
    if len(rows) <= limit:
        return rows, None
    page = rows[:limit]
    return page, page[-1]._mapping[id_column]
