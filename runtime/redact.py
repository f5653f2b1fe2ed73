"""Replace a run's secret values in every string a run returns, in one place (THREATS S1)."""

from __future__ import annotations

import base64
import functools
import json
import re
from collections.abc import Iterable
from typing import Final
from urllib.parse import quote, quote_plus

from runtime.model import Column, Discovery, DiscoveryOption, JsonValue, RunResult

REDACTED: Final = "[redacted]"
MIN_SECRET_LENGTH: Final = 4
"""Shorter values would redact ordinary text; such secrets are weak anyway."""


def _forms(secret: str) -> set[str]:
    # The ways a script or a URL usually re-encodes a secret it got.
    forms = {secret, quote(secret), quote(secret, safe=""), quote_plus(secret)}
    forms.add(json.dumps(secret)[1:-1])
    encoded = base64.b64encode(secret.encode()).decode()
    forms |= {encoded, encoded.rstrip("=")}
    return {form for form in forms if len(form) >= MIN_SECRET_LENGTH}


@functools.lru_cache(maxsize=256)
def _pattern(secrets: tuple[str, ...]) -> re.Pattern[str] | None:
    """The pattern of every form of `secrets`, longest first (a secret containing another is
    replaced whole).

    Every run builds it, mostly for the same few accounts: kept for the last 256 secret sets.
    `re` keeps its last 512 compiled patterns anyway, these among them, so the cache holds
    no secret in memory that would not be there without it.
    """
    forms: set[str] = set()
    for secret in secrets:
        if len(secret) >= MIN_SECRET_LENGTH:
            forms |= _forms(secret)
    ordered = sorted(forms, key=len, reverse=True)
    return re.compile("|".join(map(re.escape, ordered))) if ordered else None


class Redactor:
    """Knows one run's secrets and scrubs them from any text."""

    def __init__(self, secrets: Iterable[str]) -> None:
        self._secrets = tuple(secrets)
        self._pattern = _pattern(self._secrets)

    def with_secrets(self, secrets: Iterable[str]) -> Redactor:
        """A redactor of these secrets too (a secret the script hands the host mid-run)."""
        redactor = Redactor(())
        known = self._secrets
        redactor._secrets = (*known, *(s for s in secrets if s not in known))
        redactor._pattern = _pattern(redactor._secrets)
        return redactor

    def __bool__(self) -> bool:
        return self._pattern is not None

    def text(self, value: str) -> str:
        """Return `value` with every secret replaced."""
        if self._pattern is None:
            return value
        return self._pattern.sub(REDACTED, value)

    def value(self, value: JsonValue) -> JsonValue:
        """Scrub strings inside any JSON value."""
        if self._pattern is None:
            return value
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, list):
            return [self.value(item) for item in value]
        if isinstance(value, dict):
            return {key: self.value(item) for key, item in value.items()}
        return value

    def result(self, result: RunResult) -> RunResult:
        """Return `result` with every string it holds scrubbed.

        Logs, the error (message and a string code), traces, the auth message, column names,
        cells, discovery options and tree: a script can put a secret into any of them.
        """
        if self._pattern is None:
            return result
        text = self.text
        error = result.error
        if error is not None:
            code = text(error.code) if isinstance(error.code, str) else error.code
            error = error.model_copy(update={"code": code, "message": text(error.message)})
        auth = result.auth
        if auth is not None and auth.message is not None:
            auth = auth.model_copy(update={"message": text(auth.message)})
        discovery = result.discovery
        if discovery is not None:
            options = [
                DiscoveryOption(value=text(o.value), label=text(o.label)) for o in discovery.options
            ]
            discovery = Discovery(options=options, tree=self.value(discovery.tree))
        http = [
            entry.model_copy(
                update={"url": text(entry.url), "error": entry.error and text(entry.error)}
            )
            for entry in result.http
        ]
        return result.model_copy(
            update={
                "error": error,
                "auth": auth,
                "columns": self.columns(result.columns),
                "rows": self.rows(result.rows),
                "logs": [text(line) for line in result.logs],
                "http": http,
                "discovery": discovery,
            }
        )

    def columns(self, columns: list[Column]) -> list[Column]:
        """Scrub column names."""
        if self._pattern is None:
            return columns
        return [column.model_copy(update={"name": self.text(column.name)}) for column in columns]

    def rows(self, rows: list[list[JsonValue]]) -> list[list[JsonValue]]:
        """Scrub the string cells of rows (only when there is something to scrub)."""
        if self._pattern is None:
            return rows
        sub = self.text
        return [[sub(cell) if isinstance(cell, str) else cell for cell in row] for row in rows]
