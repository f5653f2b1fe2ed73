"""Encryption at rest (THREATS S2, S3): bound to its place, keys only from configuration."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from gateway.crypto import (
    DecryptionError,
    KeyConfigError,
    KeyRing,
    Sealed,
    associated_data,
    load_keyring,
    new_key_entry,
)

SECRET = b"canary-password-77"


def test_round_trip_and_binding_to_customer_row_and_field() -> None:
    ring = KeyRing([new_key_entry()])
    here = associated_data("cust-a", "account_secrets", "acct-1", "password")
    sealed = ring.seal(SECRET, here)
    assert SECRET not in sealed.blob
    assert ring.open(sealed, here) == SECRET
    for elsewhere in (
        associated_data("cust-b", "account_secrets", "acct-1", "password"),
        associated_data("cust-a", "account_secrets", "acct-2", "password"),
        associated_data("cust-a", "account_secrets", "acct-1", "apikey"),
        associated_data("cust-a", "connectors", "acct-1", "password"),
    ):
        with pytest.raises(DecryptionError):
            ring.open(sealed, elsewhere)


def test_tampering_and_unknown_keys_fail() -> None:
    ring = KeyRing([new_key_entry()])
    aad = associated_data("c", "t", "r", "f")
    sealed = ring.seal(SECRET, aad)
    flipped = bytes([sealed.blob[-1] ^ 1])
    with pytest.raises(DecryptionError):
        ring.open(Sealed(sealed.key_id, sealed.blob[:-1] + flipped), aad)
    with pytest.raises(DecryptionError, match="no key with id"):
        KeyRing([new_key_entry()]).open(sealed, aad)


def test_old_keys_still_open_and_the_newest_seals() -> None:
    old, new = new_key_entry(), new_key_entry()
    aad = associated_data("c", "t", "r", "f")
    before = KeyRing([old]).seal(SECRET, aad)
    ring = KeyRing([new, old])
    assert ring.open(before, aad) == SECRET
    assert ring.seal(SECRET, aad).key_id == new.split(":")[0]


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        ([], "at least one"),
        (["no-colon"], "entry 1"),
        (["k1:QUJD"], "32 bytes"),
        (["k1:!!!notbase64!!!"], "base64"),
        (["bad id:" + "A" * 43], "entry 1"),
    ],
)
def test_bad_key_entries_are_refused_without_echoing_keys(entries: list[str], message: str) -> None:
    with pytest.raises(KeyConfigError, match=message) as caught:
        KeyRing(entries)
    assert "notbase64" not in str(caught.value)


def test_duplicate_ids_are_refused() -> None:
    entry = new_key_entry()
    with pytest.raises(KeyConfigError, match="unique"):
        KeyRing([entry, entry])


def test_key_file_is_created_once_private(tmp_path: Path) -> None:
    ring, created = load_keyring((), tmp_path)
    assert created
    path = tmp_path / "encryption.keys"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again, created_again = load_keyring((), tmp_path)
    assert not created_again
    assert again.newest_id == ring.newest_id


def test_configured_keys_win_over_the_key_file(tmp_path: Path) -> None:
    entry = new_key_entry()
    ring, created = load_keyring((entry,), tmp_path)
    assert ring.newest_id == entry.split(":")[0]
    assert not created
    assert not (tmp_path / "encryption.keys").exists()
