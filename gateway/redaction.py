"""Pattern-based redaction for everything the gateway writes: log lines, traces, problems.

`runtime.redact.Redactor` removes the known secret values of one run; this module removes what
looks like a secret wherever it appears (by key name, `Bearer ...`, URL credentials).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import unquote_plus

from runtime.redact import REDACTED

SECRET_QUERY_KEYS: Final = frozenset(
    {"key", "code", "sig", "auth", "session", "password", "passwd", "pwd", "signature"}
)
# A key containing one of these is secret-looking too (access_token, client_secret).
_SECRET_KEY_PARTS: Final = (
    "token", "secret", "passw", "apikey", "api_key", "api-key", "signature", "credential",
    "session", "auth", "cookie", "private_key",
)  # fmt: skip
_AUTH_SCHEME: Final = re.compile(r"\b(Bearer|Basic|Token|Digest)\s+[A-Za-z0-9._~+/=\-]+", re.I)
_URL_USERINFO: Final = re.compile(r"(\b[a-z][a-z0-9+.\-]*://)[^/\s:@]+:[^/\s@]*@", re.I)
_QUERY_PAIR: Final = re.compile(r"([?&;])([^=&#\s]+)=([^&#\s]*)")


def is_secret_name(name: str) -> bool:
    """Whether a key (header, query parameter, field) names something secret."""
    key = unquote_plus(name).strip().lower()
    return key in SECRET_QUERY_KEYS or any(part in key for part in _SECRET_KEY_PARTS)


def redact_text(text: str) -> str:
    """Remove credentials that look like credentials from free text."""
    text = _AUTH_SCHEME.sub(lambda m: f"{m.group(1)} {REDACTED}", text)
    text = _URL_USERINFO.sub(lambda m: f"{m.group(1)}{REDACTED}@", text)

    def _pair(match: re.Match[str]) -> str:
        if is_secret_name(match.group(2)):
            return f"{match.group(1)}{match.group(2)}={REDACTED}"
        return match.group(0)

    return _QUERY_PAIR.sub(_pair, text)


def redact_value(value: Any, *, key: str | None = None) -> Any:
    """Redact a structure: values under secret-looking keys, and credentials in strings."""
    if key is not None and is_secret_name(key) and value is not None:
        return REDACTED
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, Mapping):
        return {k: redact_value(v, key=str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact_value(item) for item in value]
    return value
