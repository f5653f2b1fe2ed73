"""Ids are UUIDv7 strings, unique, and ordered as they were made."""

from __future__ import annotations

import threading
import time
from uuid import UUID

from gateway.store.ids import _COUNTER_MAX, _Clock, id_timestamp_ms, new_id


def test_ten_thousand_ids_are_unique_and_in_creation_order() -> None:
    made = [new_id() for _ in range(10_000)]
    assert len(set(made)) == len(made)
    assert sorted(made) == made


def test_an_id_is_a_canonical_uuid_version_7_carrying_its_time() -> None:
    before = time.time_ns() // 1_000_000
    value = new_id()
    after = time.time_ns() // 1_000_000
    parsed = UUID(value)
    assert str(parsed) == value  # canonical, lower case
    assert parsed.version == 7
    assert parsed.variant == "specified in RFC 4122"
    assert before <= id_timestamp_ms(value) <= after


def test_ids_stay_ordered_when_the_clock_stands_still_or_goes_back() -> None:
    readings = iter([5_000_000, 5_000_000, 4_000_000, *[1_000_000] * 100, 6_000_000])
    clock = _Clock(lambda: next(readings))
    made = [clock.next() for _ in range(104)]
    assert sorted(set(made)) == made
    assert {unix_ms for unix_ms, _ in made} == {5, 6}


def test_a_full_counter_borrows_the_next_millisecond() -> None:
    clock = _Clock(lambda: 5_000_000)
    unix_ms, counter = clock.next()
    assert unix_ms == 5
    assert counter < _COUNTER_MAX // 2  # room for 2**41 ids in the millisecond
    clock._counter = _COUNTER_MAX
    assert clock.next()[0] == 6


def test_ids_made_by_many_threads_are_unique() -> None:
    made: list[list[str]] = [[] for _ in range(8)]

    def make(into: list[str]) -> None:
        into.extend(new_id() for _ in range(2_000))

    threads = [threading.Thread(target=make, args=(into,)) for into in made]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    every = [value for into in made for value in into]
    assert len(set(every)) == len(every)
    assert all(into == sorted(into) for into in made)
