"""Identifiers: UUIDv7, one at a time or in bulk, increasing and on the wall clock."""

import threading
import time
import uuid

import pytest

from app.core.ids import new_id, new_id_hexes


def _ms(value: uuid.UUID) -> int:
    return value.int >> 80


def test_bulk_ids_are_distinct_increasing_uuid7() -> None:
    made = [uuid.UUID(h) for h in new_id_hexes(10_000)]  # more than one block
    assert len(set(made)) == 10_000
    assert made == sorted(made)
    assert all(u.version == 7 and u.variant == uuid.RFC_4122 for u in made)
    assert new_id_hexes(0) == []


def test_ids_increase_whichever_way_they_are_made() -> None:
    made = [new_id(), *map(uuid.UUID, new_id_hexes(3)), new_id(), *map(uuid.UUID, new_id_hexes(2))]
    made.append(new_id())
    assert made == sorted(made)
    assert len(set(made)) == len(made)
    assert all(u.version == 7 and u.variant == uuid.RFC_4122 for u in made)


def test_ids_keep_to_the_wall_clock_however_fast_they_are_made() -> None:
    before = time.time_ns() // 1_000_000
    made = [new_id() for _ in range(100_000)]
    made += map(uuid.UUID, new_id_hexes(100_000))
    after = time.time_ns() // 1_000_000
    assert before <= _ms(made[0])
    assert _ms(made[-1]) <= after + 1
    assert made == sorted(made)


def test_more_than_a_counter_full_in_one_millisecond(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(time, "time_ns", lambda: 4_000_000_000_000_000_000)
    made = [new_id() for _ in range(5000)] + [uuid.UUID(h) for h in new_id_hexes(5000)]
    assert made == sorted(made)
    assert len(set(made)) == len(made)
    # 4096 counter values a millisecond: the stopped clock is borrowed from only as needed.
    assert _ms(made[-1]) - _ms(made[0]) <= 3


def test_threads_make_distinct_increasing_ids() -> None:
    results: list[list[uuid.UUID]] = [[] for _ in range(4)]

    def make(out: list[uuid.UUID]) -> None:
        out.extend(new_id() for _ in range(5000))

    threads = [threading.Thread(target=make, args=(out,)) for out in results]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(out == sorted(out) for out in results)
    assert len({u for out in results for u in out}) == 20_000
