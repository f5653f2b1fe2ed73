"""Log lines never carry secrets (THREATS S1): by key, in text, in URLs, in tracebacks."""

from __future__ import annotations

import io
import json

import structlog

from gateway.logconfig import processors
from gateway.redaction import redact_text

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
