"""Frames between the pool and a worker: a 4-byte big-endian length, then UTF-8 JSON."""

from __future__ import annotations

import asyncio
import json
import os
import re
import struct
from typing import Any, Final

MAX_FRAME: Final = 128 * 1024 * 1024
"""Anything larger is a protocol violation (the worker is killed)."""

_HEADER: Final = struct.Struct(">I")


class ProtocolError(Exception):
    """The other side broke the framing (oversized frame, bad JSON, closed pipe)."""


def encode(message: dict[str, Any]) -> bytes:
    """Frame one message."""
    # ASCII escapes keep lone surrogates (which JavaScript strings may hold) encodable. Every
    # message is built from parsed JSON or by the pool itself, so none can be cyclic.
    payload = json.dumps(message, separators=(",", ":"), check_circular=False).encode()
    return _HEADER.pack(len(payload)) + payload


def write_frame(fd: int, frame: bytes) -> None:
    """Write a whole frame to a blocking descriptor."""
    view = memoryview(frame)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def read_frame(fd: int) -> bytes:
    """Read one frame's payload from a blocking descriptor.

    Raises:
        ProtocolError: the pipe closed or the frame is too large.
    """
    (size,) = _HEADER.unpack(_read_exactly(fd, _HEADER.size))
    if size > MAX_FRAME:
        raise ProtocolError(f"frame of {size} bytes is too large")
    return _read_exactly(fd, size)


def _read_exactly(fd: int, size: int) -> bytes:
    chunks: list[bytes] = []
    missing = size
    while missing:
        chunk = os.read(fd, min(missing, 1 << 20))
        if not chunk:
            raise ProtocolError("pipe closed")
        chunks.append(chunk)
        missing -= len(chunk)
    return b"".join(chunks)


async def read_message(reader: asyncio.StreamReader) -> tuple[dict[str, Any], int]:
    """Read and decode one frame on the pool side; returns it and its size in bytes.

    Raises:
        ProtocolError: the worker closed the pipe or sent a malformed frame.
    """
    try:
        header = await reader.readexactly(_HEADER.size)
        (size,) = _HEADER.unpack(header)
        if size > MAX_FRAME:
            raise ProtocolError(f"frame of {size} bytes is too large")
        payload = await reader.readexactly(size)
    except (asyncio.IncompleteReadError, ConnectionError) as exc:
        raise ProtocolError("worker pipe closed") from exc
    try:
        message = json.loads(payload)
    except ValueError as exc:
        raise ProtocolError("worker sent a frame that is not JSON") from exc
    if not isinstance(message, dict):
        raise ProtocolError("worker sent a frame that is not an object")
    if _ESCAPED_SURROGATE.search(payload):
        message = _scrub(message)
    return message, size


# JSON.stringify escapes lone surrogates (and only those) as \udXXX; they cannot be encoded
# as UTF-8 later, so they become U+FFFD as soon as they arrive.
_ESCAPED_SURROGATE: Final = re.compile(rb"\\u[dD][89a-fA-F]")
_LONE_SURROGATE: Final = re.compile("[\ud800-\udfff]")


def _scrub(value: Any) -> Any:
    if isinstance(value, str):
        return _LONE_SURROGATE.sub("\ufffd", value)
    if isinstance(value, list):
        return [_scrub(item) for item in value]
    if isinstance(value, dict):
        return {_scrub(key): _scrub(item) for key, item in value.items()}
    return value
