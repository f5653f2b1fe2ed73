"""Building app zips for the tests, hostile ones included."""

from __future__ import annotations

import io
import json
import stat
import struct
import warnings
import zipfile
from typing import Any

MANIFEST: dict[str, Any] = {"name": "Sales board", "version": "1.0.0"}


def make_zip(
    files: dict[str, bytes],
    *,
    manifest: dict[str, Any] | None = MANIFEST,
    links: dict[str, str] | None = None,
    compression: int = zipfile.ZIP_DEFLATED,
) -> bytes:
    """A zip of `files` (names written as given), `manifest.json` first unless None."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        if manifest is not None:
            archive.writestr("manifest.json", json.dumps(manifest))
        for name, content in files.items():
            archive.writestr(zipfile.ZipInfo(name), content, compress_type=compression)
        for name, target in (links or {}).items():
            info = zipfile.ZipInfo(name)
            info.create_system = 3  # Unix: the mode bits are read from external_attr
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            archive.writestr(info, target)
    return buffer.getvalue()


def with_duplicate(name: str) -> bytes:
    """A zip holding two entries of the same name."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about the duplicate, and writes it
        archive.writestr("manifest.json", json.dumps(MANIFEST))
        archive.writestr(name, b"first")
        archive.writestr(name, b"second")
    return buffer.getvalue()


def lying_size(name: str, content: bytes, claimed: int) -> bytes:
    """A zip whose headers claim `claimed` bytes for `name`, which inflates to `content`."""
    data = bytearray(make_zip({name: content}))
    encoded = name.encode()
    # Local header: uncompressed size at offset 22; central directory entry: at offset 24.
    local = data.find(b"PK\x03\x04")
    while local >= 0:
        length = struct.unpack_from("<H", data, local + 26)[0]
        if bytes(data[local + 30 : local + 30 + length]) == encoded:
            struct.pack_into("<I", data, local + 22, claimed)
        local = data.find(b"PK\x03\x04", local + 4)
    central = data.find(b"PK\x01\x02")
    while central >= 0:
        length = struct.unpack_from("<H", data, central + 28)[0]
        if bytes(data[central + 46 : central + 46 + length]) == encoded:
            struct.pack_into("<I", data, central + 24, claimed)
        central = data.find(b"PK\x01\x02", central + 4)
    return bytes(data)
