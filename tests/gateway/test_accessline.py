"""The request's one log line: only the request's own task adds to it."""

from __future__ import annotations

import asyncio

from gateway.accessline import add_to_line, close_line, open_line


async def test_fields_go_to_the_line_of_the_requests_own_task() -> None:
    line, token = open_line()
    try:
        assert add_to_line(run_id="r1")
        # A task started by the request (a background job) inherits the context, not the line.
        assert not await asyncio.create_task(_add(run_id="r2"))
    finally:
        close_line(token)
    assert line.fields == {"run_id": "r1"}
    assert not add_to_line(run_id="r3")  # no request: the caller writes its own line


async def _add(**fields: str) -> bool:
    return add_to_line(**fields)
