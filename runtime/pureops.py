"""Pure helpers the prelude calls through `__gw_util`: hashing, base64, JWT, CSV and XML."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from typing import Any, Final

from runtime.model import JsonValue
from runtime.textformats import parse_csv, parse_xml


def _b64enc(text: str) -> str:
    return base64.b64encode(text.encode("utf-8", "surrogatepass")).decode("ascii")


def _b64dec(text: str) -> str:
    try:
        raw = base64.b64decode(text.strip() + "=" * (-len(text.strip()) % 4), validate=False)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("b64DecodeUnicode: the text is not base64") from exc
    return raw.decode("utf-8", "replace")


def _md5(text: str) -> str:
    return hashlib.md5(text.encode("utf-8", "surrogatepass"), usedforsecurity=False).hexdigest()


_HMAC_DIGESTS: Final = {"sha1": hashlib.sha1, "sha256": hashlib.sha256}


def _hmac(arg: list[str]) -> str:
    algorithm, text, key = arg
    digest = _HMAC_DIGESTS[algorithm]
    return hmac.new(key.encode(), text.encode("utf-8", "surrogatepass"), digest).hexdigest()


_JWT_ALGORITHMS: Final = frozenset(
    {"HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "PS256"}
)


def _jwt(arg: dict[str, Any]) -> str:
    # Imported here: the worker only pays for authlib when a script signs a token.
    from authlib.jose import JsonWebSignature

    algorithm = str(arg.get("algorithm") or "HS256").upper()
    if algorithm not in _JWT_ALGORITHMS:
        raise ValueError(f"getJWT: unsupported algorithm {algorithm!r}")
    key = str(arg.get("authKey") or "")
    if not key:
        raise ValueError("getJWT: DOMO.jwtBuilder.authKey is not set")
    now = int(time.time())
    claims: dict[str, JsonValue] = {"iat": now}
    if arg.get("issuer") is not None:
        claims["iss"] = str(arg["issuer"])
    if arg.get("subject") is not None:
        claims["sub"] = str(arg["subject"])
    expiration = float(arg.get("expiration") or 0)
    if expiration:
        # Small numbers are a lifetime in seconds, large ones an absolute epoch time.
        claims["exp"] = int(expiration if expiration >= 1_000_000_000 else now + expiration)
    extra = arg.get("claims") or {}
    if not isinstance(extra, dict):
        raise ValueError("getJWT: DOMO.jwtBuilder.claims must be an object")
    claims.update(extra)
    jws = JsonWebSignature(algorithms=[algorithm])
    payload = json.dumps(claims, separators=(",", ":")).encode()
    try:
        token = jws.serialize_compact({"alg": algorithm, "typ": "JWT"}, payload, key.encode())
    except Exception as exc:  # authlib raises many types for bad keys
        raise ValueError(f"getJWT: cannot sign with this {algorithm} key") from exc
    return bytes(token).decode("ascii")


OPS: Final[dict[str, Callable[[Any], JsonValue]]] = {
    "b64enc": _b64enc,
    "b64dec": _b64dec,
    "md5": _md5,
    "hmac": _hmac,
    "jwt": _jwt,
    "csv": parse_csv,
    "xml": parse_xml,
}
