"""Encryption at rest: AES-GCM under keys with ids, each ciphertext bound to where it lives.

Keys come from configuration (`GATEWAY_ENCRYPTION_KEYS`, newest first) or, for the embedded
default only, from a key file in the data folder, never from the database (THREATS S3). The
associated data names the customer, the table, the row and the field, so a ciphertext copied
to another row, field or customer does not decrypt (THREATS S2).
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

KEY_BYTES: Final = 32
NONCE_BYTES: Final = 12
KEY_FILE_NAME: Final = "encryption.keys"
_KEY_ID: Final = re.compile(r"[A-Za-z0-9_\-]{1,32}")


class KeyConfigError(ValueError):
    """A key entry is malformed (the message names the entry, never the key)."""


class DecryptionError(Exception):
    """A ciphertext cannot be opened: unknown key id, or it was tampered with or moved."""


@dataclass(frozen=True, slots=True)
class Sealed:
    """A ciphertext and the id of the key that sealed it."""

    key_id: str
    blob: bytes


def associated_data(customer_id: str, table: str, row_id: str, field: str) -> bytes:
    """What a ciphertext is bound to; unit separators keep the parts apart."""
    return "\x1f".join((customer_id, table, row_id, field)).encode()


def new_key_entry() -> str:
    """A fresh `id:key` entry for `GATEWAY_ENCRYPTION_KEYS` (`gateway admin generate-key`)."""
    key_id = "k" + secrets.token_hex(4)
    key = base64.urlsafe_b64encode(secrets.token_bytes(KEY_BYTES)).decode().rstrip("=")
    return f"{key_id}:{key}"


def _parse_entry(entry: str, position: int) -> tuple[str, bytes]:
    key_id, sep, encoded = entry.strip().partition(":")
    if not sep or not _KEY_ID.fullmatch(key_id):
        raise KeyConfigError(f"key entry {position} must be 'id:key' with a short id")
    try:
        key = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
    except (binascii.Error, ValueError):
        raise KeyConfigError(f"key {key_id!r} is not URL-safe base64") from None
    if len(key) != KEY_BYTES:
        raise KeyConfigError(f"key {key_id!r} must be {KEY_BYTES} bytes, not {len(key)}")
    return key_id, key


class KeyRing:
    """The configured keys, newest first; seals with the newest, opens with any."""

    def __init__(self, entries: Sequence[str]) -> None:
        """Parse `id:key` entries.

        Raises:
            KeyConfigError: no entries, a malformed entry or a repeated id.
        """
        if not entries:
            raise KeyConfigError("at least one encryption key is needed")
        parsed = [_parse_entry(entry, i + 1) for i, entry in enumerate(entries)]
        ids = [key_id for key_id, _ in parsed]
        if len(set(ids)) != len(ids):
            raise KeyConfigError("key ids must be unique")
        self._keys = {key_id: AESGCM(key) for key_id, key in parsed}
        self.newest_id = ids[0]
        self.ids = tuple(ids)

    def seal(self, plaintext: bytes, aad: bytes) -> Sealed:
        """Encrypt under the newest key."""
        nonce = os.urandom(NONCE_BYTES)
        blob = nonce + self._keys[self.newest_id].encrypt(nonce, plaintext, aad)
        return Sealed(self.newest_id, blob)

    def open(self, sealed: Sealed, aad: bytes) -> bytes:
        """Decrypt.

        Raises:
            DecryptionError: unknown key id, or the ciphertext does not belong to `aad`.
        """
        cipher = self._keys.get(sealed.key_id)
        if cipher is None:
            raise DecryptionError(f"no key with id {sealed.key_id!r} is configured")
        try:
            return cipher.decrypt(sealed.blob[:NONCE_BYTES], sealed.blob[NONCE_BYTES:], aad)
        except InvalidTag:
            raise DecryptionError("the ciphertext does not belong here or was altered") from None


def load_keyring(configured: Sequence[str], data_dir: Path) -> tuple[KeyRing, bool]:
    """The configured keys, or the data folder's key file (created if missing).

    Returns the key ring and whether a new key file was just created (the caller warns:
    the key now lives next to the data it protects, fine only for local use).

    Raises:
        KeyConfigError: a configured entry or the key file is malformed.
    """
    if configured:
        return KeyRing(configured), False
    path = data_dir / KEY_FILE_NAME
    created = False
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        # O_EXCL: two processes starting at once must not write two different keys.
        try:
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(descriptor, "w") as handle:
                handle.write(new_key_entry() + "\n")
            created = True
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    return KeyRing(lines), created
