"""PNG checks for connector icons: a structurally complete PNG of the slot's exact size."""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final

SIGNATURE: Final = b"\x89PNG\r\n\x1a\n"
MAX_ICON_BYTES: Final = 2 * 1024 * 1024
# Colour type -> allowed bit depths (PNG specification, 11.2.2 IHDR).
_DEPTHS: Final = {0: {1, 2, 4, 8, 16}, 2: {8, 16}, 3: {1, 2, 4, 8}, 4: {8, 16}, 6: {8, 16}}
_MAX_DIMENSION: Final = 2**31 - 1


class InvalidPng(ValueError):
    """The bytes are not a complete, well-formed PNG; the message says what is wrong."""


@dataclass(frozen=True, slots=True)
class PngInfo:
    """What the header of a valid PNG says."""

    width: int
    height: int
    bit_depth: int
    color_type: int


def inspect_png(data: bytes) -> PngInfo:
    """Check that `data` is a complete PNG and return its header.

    Checked: the signature, an IHDR chunk first (13 bytes, sane values), every chunk's
    length and CRC, at least one IDAT, and an empty IEND chunk at the very end. The image
    data itself is not decompressed.

    Raises:
        InvalidPng: what is wrong, in words a person can act on.
    """
    if not data.startswith(SIGNATURE):
        raise InvalidPng("the body is not a PNG image (no PNG signature)")
    chunks = _chunks(data, len(SIGNATURE))
    kind, body = next(chunks)
    info = _header(kind, body)
    seen_idat = False
    for kind, body in chunks:
        if kind == b"IHDR":
            raise InvalidPng("the PNG has more than one IHDR chunk")
        if kind == b"IEND" and body:
            raise InvalidPng("the PNG's IEND chunk is not empty")
        seen_idat = seen_idat or kind == b"IDAT"
    if not seen_idat:
        raise InvalidPng("the PNG has no image data (no IDAT chunk)")
    return info


def _chunks(data: bytes, offset: int) -> Iterator[tuple[bytes, bytes]]:
    """Each chunk's type and data, CRC-checked, up to IEND, which must end `data`."""
    while True:
        if offset + 8 > len(data):
            raise InvalidPng("the PNG is truncated (it ends before its IEND chunk)")
        length, kind = struct.unpack(">I4s", data[offset : offset + 8])
        end = offset + 8 + length + 4
        if end > len(data):
            raise InvalidPng(f"the PNG is truncated (inside its {_name(kind)} chunk)")
        body = data[offset + 8 : end - 4]
        (crc,) = struct.unpack(">I", data[end - 4 : end])
        if zlib.crc32(kind + body) != crc:
            raise InvalidPng(f"the PNG is corrupt (bad CRC in its {_name(kind)} chunk)")
        yield kind, body
        offset = end
        if kind == b"IEND":
            if offset != len(data):
                raise InvalidPng("the PNG has data after its IEND chunk")
            return


def _header(kind: bytes, body: bytes) -> PngInfo:
    if kind != b"IHDR" or len(body) != 13:
        raise InvalidPng("the PNG does not start with a valid IHDR chunk")
    width, height, depth, color, compression, filtering, interlace = struct.unpack(">IIBBBBB", body)
    if not (0 < width <= _MAX_DIMENSION and 0 < height <= _MAX_DIMENSION):
        raise InvalidPng("the PNG's width and height must be between 1 and 2^31-1")
    if depth not in _DEPTHS.get(color, set()):
        raise InvalidPng(f"the PNG has an invalid colour type {color} / bit depth {depth}")
    if compression != 0 or filtering != 0 or interlace not in (0, 1):
        raise InvalidPng("the PNG's IHDR names an unknown compression, filter or interlace")
    return PngInfo(width, height, depth, color)


def _name(kind: bytes) -> str:
    return kind.decode("latin-1") if kind.isalpha() else repr(kind)
