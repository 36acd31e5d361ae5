"""Identifiers: UUIDv7, one at a time or in bulk."""

import time
import uuid

from app.core.ids import new_id, new_id_hexes


def test_bulk_ids_are_distinct_increasing_uuid7() -> None:
    ids = [uuid.UUID(h) for h in new_id_hexes(5000)]
    assert len(set(ids)) == 5000
    assert ids == sorted(ids)
    assert all(u.version == 7 and u.variant == uuid.RFC_4122 for u in ids)
    # new_id's clock runs ahead of the wall clock when ids are made faster than one per ms.
    assert ids[0].int >> 80 >= time.time_ns() // 1_000_000 - 1000
    assert new_id_hexes(0) == []


def test_ids_increase_whichever_way_they_are_made() -> None:
    made = [new_id(), *map(uuid.UUID, new_id_hexes(3)), new_id(), *map(uuid.UUID, new_id_hexes(2))]
    made.append(new_id())
    assert made == sorted(made)
    assert len(set(made)) == len(made)
