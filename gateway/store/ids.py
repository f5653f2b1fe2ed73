"""Time-ordered ids: UUIDv7 strings whose text order is their creation order."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from typing import Final
from uuid import UUID

_COUNTER_BITS: Final = 42
_COUNTER_MAX: Final = (1 << _COUNTER_BITS) - 1
_VERSION_7_AND_VARIANT: Final = (0x7 << 76) | (0b10 << 62)


class _Clock:
    """The last millisecond and counter handed out, so ids stay strictly increasing.

    RFC 9562 section 6.2 method 1: a 42-bit counter, seeded at random with its top bit clear,
    is incremented within one millisecond; when the clock stands still or goes backwards the
    previous millisecond is reused, and a counter overflow borrows the next millisecond.
    """

    def __init__(self, time_ns: Callable[[], int] = time.time_ns) -> None:
        self._time_ns = time_ns
        self._lock = threading.Lock()  # ids are also made from worker threads
        self._last_ms = -1
        self._counter = 0

    def next(self) -> tuple[int, int]:
        """The (Unix milliseconds, counter) pair of a new id."""
        now_ms = self._time_ns() // 1_000_000
        with self._lock:
            if now_ms > self._last_ms:
                self._last_ms, self._counter = now_ms, _random_counter()
            elif self._counter < _COUNTER_MAX:
                self._counter += 1
            else:
                self._last_ms, self._counter = self._last_ms + 1, _random_counter()
            return self._last_ms, self._counter


def _random_counter() -> int:
    # The top bit stays clear so that one millisecond has room for 2**41 more ids.
    return int.from_bytes(os.urandom(6)) & (_COUNTER_MAX >> 1)


_CLOCK: Final = _Clock()


def new_id() -> str:
    """A new UUIDv7 in canonical lower-case text, greater than every id made before it here.

    Layout: 48 bits of Unix time in milliseconds, the version, the 12 high bits of the
    counter, the variant, the 30 low bits of the counter and 32 random bits. Ids from
    different processes made in the same millisecond are ordered arbitrarily among each other.
    """
    unix_ms, counter = _CLOCK.next()
    value = (unix_ms & 0xFFFF_FFFF_FFFF) << 80
    value |= (counter >> 30) << 64
    value |= (counter & 0x3FFF_FFFF) << 32
    value |= int.from_bytes(os.urandom(4))
    return str(UUID(int=value | _VERSION_7_AND_VARIANT))


def id_timestamp_ms(value: str) -> int:
    """The Unix time in milliseconds at which the id `value` was made.

    Raises:
        ValueError: `value` is not a UUID.
    """
    return UUID(value).int >> 80
