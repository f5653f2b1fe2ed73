"""A bounded in-process cache: least recently used out, entries aged out, dropped at once.

Each cache belongs to one area of `gateway.store.generations`, which drops it when a write
of that area commits here or is seen by the poll (another process wrote). A fill that read
the store before such a drop must not put its stale value back afterwards: `get_or_load`
notes the cache's epoch before it loads and stores only if no drop happened meanwhile.
Nothing is served or stored while the owner says the cache is not `fresh` (its polls
stalled), so a process that cannot see other processes' writes falls back to the store.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

Clock = Callable[[], float]


class Cache(Generic[K, V]):
    """At most `max_size` entries, each served for at most `max_age_s` after it was loaded.

    Args:
        name: what the cache holds (for logs and metrics).
        max_size: the entry count bound; the least recently used entry goes first.
        max_age_s: how long an entry is served after it was loaded, even if nothing changed.
        fresh: whether entries may be served and stored now (the owner's polls are current).
        clock: monotonic seconds (tests pass their own).

    Raises:
        ValueError: a bound is not positive.
    """

    def __init__(
        self,
        name: str,
        *,
        max_size: int,
        max_age_s: float,
        fresh: Callable[[], bool],
        clock: Clock = time.monotonic,
    ) -> None:
        if max_size < 1 or max_age_s <= 0:
            raise ValueError(f"cache {name!r}: max_size and max_age_s must be positive")
        self.name = name
        self._max_size = max_size
        self._max_age_s = max_age_s
        self._fresh = fresh
        self._clock = clock
        self._entries: OrderedDict[K, tuple[float, V]] = OrderedDict()
        self._epoch = 0
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    async def get_or_load(self, key: K, load: Callable[[], Awaitable[V]]) -> V:
        """The cached value of `key`, or `load()`'s (kept unless a drop happened meanwhile).

        Raises:
            Whatever `load` raises; nothing is cached then.
        """
        found = self.peek(key)
        if found is not None:
            return found[0]
        epoch = self._epoch
        value = await load()
        self.put(key, value, epoch)
        return value

    def peek(self, key: K) -> tuple[V] | None:
        """`(value,)` if `key` is cached, fresh and young enough, else None (a miss)."""
        entry = self._entries.get(key) if self._fresh() else None
        if entry is not None and self._clock() - entry[0] > self._max_age_s:
            del self._entries[key]
            entry = None
        if entry is None:
            self.misses += 1
            return None
        self.hits += 1
        self._entries.move_to_end(key)
        return (entry[1],)

    @property
    def epoch(self) -> int:
        """Changes with every drop; pass what it was before loading to `put`."""
        return self._epoch

    def put(self, key: K, value: V, epoch: int) -> None:
        """Keep `value` for `key` if nothing was dropped since `epoch` was read."""
        if epoch != self._epoch or not self._fresh():
            return
        self._entries[key] = (self._clock(), value)
        self._entries.move_to_end(key)
        while len(self._entries) > self._max_size:
            self._entries.popitem(last=False)

    def discard(self, key: K) -> None:
        """Forget `key` (and refuse fills of it that are in flight)."""
        self._epoch += 1
        self._entries.pop(key, None)

    def clear(self) -> None:
        """Forget everything (and refuse fills that are in flight)."""
        self._epoch += 1
        self._entries.clear()
