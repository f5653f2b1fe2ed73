"""structlog configuration: JSON lines off a terminal, readable lines on one, secrets removed."""

from __future__ import annotations

import functools
import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any, Final

import structlog
from structlog.tracebacks import ExceptionDictTransformer

from gateway.redaction import is_secret_name, redact_value

_PLAIN_TEXT: Final = re.compile(r"[^\s=@]*")
"""Text `redact_text` leaves alone: a credential it finds needs whitespace after a scheme
(`Bearer x`), an `@` (URL userinfo) or an `=` (a query pair)."""
_SCALARS: Final = (int, float, bool, type(None))


@functools.lru_cache(maxsize=1024)
def _secret_key(key: str) -> bool:
    # Event keys are names in the code, a small fixed set: each is checked once.
    return is_secret_name(key)


def redact_secrets(
    logger: Any, method_name: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """Last processor before rendering: no secret leaves in a log line (THREATS S1).

    Every line of every request passes here, so the common values (ids, paths, numbers under
    ordinary keys) skip `redact_value`, which would return them unchanged.
    """
    redacted: dict[str, Any] = {}
    for key, value in event_dict.items():
        if _secret_key(key) or not (
            isinstance(value, _SCALARS) or (type(value) is str and _PLAIN_TEXT.fullmatch(value))
        ):
            value = redact_value(value, key=key)
        redacted[key] = value
    return redacted


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
    """Configure structlog and route the standard library's loggers through the same chain.

    The gateway's own events are rendered and written by structlog directly: going through
    a standard-library `LogRecord`, handler and formatter cost more than the rest of a line,
    and every request writes one.
    """
    as_json = not sys.stderr.isatty()
    shared = processors(json=as_json)
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer() if as_json else structlog.dev.ConsoleRenderer()
    )
    structlog.configure(
        processors=[*shared, renderer],
        logger_factory=structlog.WriteLoggerFactory(file=sys.stderr),
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
