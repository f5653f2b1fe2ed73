"""API tokens: random, shown once, stored as a SHA-256 digest."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Final

TOKEN_PREFIX: Final = "gw_"  # noqa: S105 - a public prefix, not a secret
_TOKEN_BYTES: Final = 32


def new_token() -> tuple[str, str]:
    """A fresh token and the digest to store for it."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(_TOKEN_BYTES)
    return token, token_digest(token)


def token_digest(token: str) -> str:
    """The stored form of a token. 256 random bits need no salt or slow hash."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def digests_match(stored: str, presented_token: str) -> bool:
    """Compare a stored digest with a presented token in constant time."""
    return hmac.compare_digest(stored, token_digest(presented_token))


def looks_like_token(value: str) -> bool:
    """Cheap shape check before touching the database."""
    return value.startswith(TOKEN_PREFIX) and 20 <= len(value) <= 128 and value.isascii()
