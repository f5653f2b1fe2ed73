"""A script upload answers whether the script parses, and stores it either way (SPEC 4.3)."""

from __future__ import annotations

from http import HTTPStatus

import pytest

from gateway.connectors.service import MAX_SCRIPT_BYTES
from tests.gateway.callers import Caller, Client
from tests.gateway.connectors.conftest import create_connector, put_script


async def test_a_good_script_answers_ok(client: Client, owner: Caller) -> None:
    created = await create_connector(client, owner)
    info = await put_script(client, owner, created["guid"], "process", "DOMO.log(1);\n")
    assert info["syntax"] == {"ok": True}
    assert info["size"] == len("DOMO.log(1);\n")


@pytest.mark.parametrize(
    ("source", "line", "column"),
    [
        ("let = = 1;\n", 1, 7),
        ("var a = 1;\n" * 6 + "  if (a { }\n", 7, 9),
    ],
)
async def test_a_syntax_error_is_stored_and_answered_with_its_place(
    client: Client, owner: Caller, source: str, line: int, column: int
) -> None:
    created = await create_connector(client, owner)
    info = await put_script(client, owner, created["guid"], "process", source)
    syntax = info["syntax"]
    assert (syntax["ok"], syntax["line"], syntax["column"]) == (False, line, column)
    assert syntax["message"].startswith("SyntaxError: ")
    stored = await client.get(
        f"/api/v1/connectors/{created['guid']}/scripts/process", headers=owner.headers
    )
    assert stored.status == HTTPStatus.OK
    assert await stored.text() == source


async def test_a_huge_script_is_checked(client: Client, owner: Caller) -> None:
    created = await create_connector(client, owner)
    line = "DOMO.log('" + "x" * 80 + "');\n"
    source = line * ((MAX_SCRIPT_BYTES - 100) // len(line)) + "oops(;\n"
    info = await put_script(client, owner, created["guid"], "process", source)
    assert info["syntax"]["ok"] is False
    assert info["syntax"]["line"] == source.count("\n")


async def test_a_script_that_would_never_end_is_only_parsed(client: Client, owner: Caller) -> None:
    created = await create_connector(client, owner)
    source = "while (true) {}\nfor (;;) { DOMO.log('never'); }\n"
    info = await put_script(client, owner, created["guid"], "auth", source)
    assert info["syntax"] == {"ok": True}
