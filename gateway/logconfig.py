"""structlog configuration: JSON lines off a terminal, readable lines on one, secrets removed."""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog
from structlog.tracebacks import ExceptionDictTransformer

from gateway.redaction import redact_value


def redact_secrets(
    logger: Any, method_name: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """Last processor before rendering: no secret leaves in a log line (THREATS S1)."""
    return {key: redact_value(value, key=key) for key, value in event_dict.items()}


def processors(*, json: bool) -> list[structlog.types.Processor]:
    """The processor chain shared by structlog and standard-library log records."""
    chain: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.add_log_level,
    ]
    if json:
        # Tracebacks as data, without local variables (they would hold secrets).
        chain.append(
            structlog.processors.ExceptionRenderer(ExceptionDictTransformer(show_locals=False))
        )
    chain.append(redact_secrets)
    return chain


def configure_logging(level: int = logging.INFO) -> None:
    """Configure structlog and route the standard library's loggers through it."""
    as_json = not sys.stderr.isatty()
    shared = processors(json=as_json)
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer() if as_json else structlog.dev.ConsoleRenderer()
    )
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.make_filtering_bound_logger(level),
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # aiohttp's access log repeats our request line and would print raw query strings.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
