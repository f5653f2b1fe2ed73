"""Log lines never carry secrets (THREATS S1): by key, in text, in URLs, in tracebacks."""

from __future__ import annotations

import io
import json
import logging
import sys
from collections.abc import MutableMapping
from http import HTTPStatus
from typing import Any

import pytest
import structlog

from gateway.logconfig import configure_logging, processors
from gateway.redaction import redact_text
from tests.gateway.callers import Client, problem

CANARY = "canary-Zx81QpLm"


def _logger(out: io.StringIO) -> structlog.typing.FilteringBoundLogger:
    return structlog.wrap_logger(  # type: ignore[no-any-return]
        structlog.PrintLogger(out),
        processors=[*processors(json=True), structlog.processors.JSONRenderer()],
        wrapper_class=structlog.make_filtering_bound_logger(0),
    )


def test_secret_keys_bearer_tokens_and_url_credentials_are_redacted() -> None:
    out = io.StringIO()
    log = _logger(out)
    log.info(
        "upstream_call",
        password=CANARY,
        client_secret=CANARY,
        headers={"Authorization": f"Bearer {CANARY}", "Accept": "text/csv"},
        note=f"sent Authorization: Bearer {CANARY} to the API",
        url=f"https://user:{CANARY}@api.example.com/x?access_token={CANARY}&page=2",
        nested=[{"apiKey": CANARY}],
    )
    line = out.getvalue()
    assert CANARY not in line
    event = json.loads(line)
    assert event["headers"]["Accept"] == "text/csv"
    assert event["url"] == ("https://[redacted]@api.example.com/x?access_token=[redacted]&page=2")


def test_tracebacks_have_no_local_variables() -> None:
    out = io.StringIO()
    log = _logger(out)

    def fail(token: str) -> None:
        secret_value = token
        raise RuntimeError("refused " + str(len(secret_value)))

    try:
        fail(CANARY)
    except RuntimeError:
        log.exception("request_failed")
    line = out.getvalue()
    assert "refused 15" in line
    assert CANARY not in line


def test_plain_text_is_left_alone() -> None:
    text = "GET /api/v1/runs?limit=50&cursor=abc took 3 ms"
    assert redact_text(text) == text


def _rendered(event: MutableMapping[str, Any]) -> dict[str, Any]:
    """`event` as the real processor chain writes it (redaction included)."""
    out = io.StringIO()
    fields = {k: v for k, v in event.items() if k not in ("event", "log_level")}
    _logger(out).info(event["event"], **fields)
    rendered: dict[str, Any] = json.loads(out.getvalue())
    return rendered


async def test_a_refused_request_logs_its_problem_code_readably(client: Client) -> None:
    with structlog.testing.capture_logs() as captured:
        response = await client.get("/api/v1/me")
    await problem(response, HTTPStatus.UNAUTHORIZED, "unauthenticated")
    refused = [e for e in captured if e["event"] == "request_refused"]
    assert len(refused) == 1
    assert _rendered(refused[0])["problem"] == "unauthenticated"


async def test_an_oauth_code_in_a_callback_url_never_reaches_a_log_line(client: Client) -> None:
    with structlog.testing.capture_logs() as captured:
        response = await client.get(
            f"/api/v1/oauth/callback?state=forged&code={CANARY}",
            headers={"Accept": "application/json"},
        )
    await problem(response, HTTPStatus.BAD_REQUEST, "bad_request")
    lines = [json.dumps(_rendered(event)) for event in captured]
    assert any('"problem": "bad_request"' in line for line in lines)
    assert not any(CANARY in line for line in lines)
    out = io.StringIO()
    _logger(out).info(
        "callback_seen", url=f"http://127.0.0.1:8080/api/v1/oauth/callback?code={CANARY}&state=s"
    )
    assert CANARY not in out.getvalue()
    assert "state=s" in out.getvalue()


def test_configured_logging_redacts_gateway_events_and_library_records(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    out = io.StringIO()
    monkeypatch.setattr(sys, "stderr", out)
    saved, root = structlog.get_config(), logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        configure_logging()
        structlog.get_logger("gateway.test").info(
            "request_finished",
            route="/api/v1/runs/{id}",
            status=200,
            note=f"sent Authorization: Bearer {CANARY}",
            url=f"https://x.test/cb?code={CANARY}&page=2",
            client_secret=CANARY,
            plain="no-secret-here",
        )
        logging.getLogger("aiohttp.server").warning("saw Bearer %s", CANARY)
    finally:
        structlog.configure(**saved)
        root.handlers[:] = handlers
        root.setLevel(level)
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert CANARY not in out.getvalue()
    assert [line["level"] for line in lines] == ["info", "warning"]
    event = lines[0]
    assert event["route"] == "/api/v1/runs/{id}"
    assert event["status"] == 200
    assert event["plain"] == "no-secret-here"
    assert event["url"] == "https://x.test/cb?code=[redacted]&page=2"
    assert event["client_secret"] == "[redacted]"
    assert lines[1]["event"] == "saw Bearer [redacted]"
