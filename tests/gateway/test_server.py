"""Malformed HTTP gets a problem and a warning, over a raw socket to the real runner."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from http import HTTPStatus

import pytest
import structlog
from aiohttp import web

from gateway.app import create_app
from gateway.problems import PROBLEM_CONTENT_TYPE
from gateway.server import MALFORMED_DETAIL, GatewayRunner
from gateway.settings import Settings

SECRET = "canary-Hd72kLq0"


@pytest.fixture
async def address(settings: Settings) -> AsyncIterator[tuple[str, int]]:
    """The gateway served by its own runner on 127.0.0.1, port 0."""
    runner = GatewayRunner(create_app(settings))
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        host, port = runner.addresses[0][:2]
        yield host, port
    finally:
        await runner.cleanup()


async def _exchange(address: tuple[str, int], raw: bytes) -> tuple[int, dict[str, str], bytes]:
    reader, writer = await asyncio.open_connection(*address)
    try:
        writer.write(raw)
        await writer.drain()
        answer = await reader.read()  # the gateway closes after a malformed request
    finally:
        writer.close()
        await writer.wait_closed()
    head, _, body = answer.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(status_line.split()[1]), headers, body


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(
            b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Bad: a\x00b\r\n\r\n", id="nul-in-header"
        ),
        pytest.param(b"GET /healthz\x01 HTTP/1.1\r\nHost: x\r\n\r\n", id="bad-request-line"),
        pytest.param(
            b"GET /healthz HTTP/1.1\r\nHost: x\r\n"
            b"Authorization: Bearer " + SECRET.encode() + b"\x00\r\n\r\n",
            id="nul-after-a-token",
        ),
    ],
)
async def test_malformed_http_is_a_problem_and_a_warning(
    address: tuple[str, int], raw: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    with structlog.testing.capture_logs() as captured, caplog.at_level(logging.DEBUG):
        status, headers, body = await _exchange(address, raw)
    assert status == HTTPStatus.BAD_REQUEST
    assert headers["content-type"].startswith(PROBLEM_CONTENT_TYPE)
    problem = json.loads(body)
    assert problem["code"] == "bad_request"
    assert problem["detail"] == MALFORMED_DETAIL
    [logged] = [e for e in captured if e["event"] == "malformed_request"]
    assert logged["log_level"] == "warning"
    assert logged["request_id"] == headers["x-request-id"]
    # Nothing at error level, no traceback, and never the bytes the parser quoted.
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not [r for r in caplog.records if r.exc_info]
    assert SECRET not in json.dumps(captured) + caplog.text + body.decode()


async def test_a_well_formed_request_is_served_as_usual(address: tuple[str, int]) -> None:
    status, _, body = await _exchange(
        address, b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    assert status == HTTPStatus.OK
    assert json.loads(body) == {"status": "ok"}
