"""Identifiers: UUIDv7, one at a time or in bulk."""

import time
import uuid

from app.core.ids import new_id, new_id_hexes


def test_bulk_ids_are_distinct_uuid7_of_this_millisecond() -> None:
    before = time.time_ns() // 1_000_000
    ids = [uuid.UUID(h) for h in new_id_hexes(5000)]
    after = time.time_ns() // 1_000_000
    assert len(set(ids)) == 5000
    assert all(u.version == 7 and u.variant == uuid.RFC_4122 for u in ids)
    assert all(before <= u.int >> 80 <= after for u in ids)
    assert new_id_hexes(0) == []


def test_single_ids_are_uuid7_and_increase() -> None:
    ids = [new_id() for _ in range(100)]
    assert all(u.version == 7 for u in ids)
    assert ids == sorted(ids)
