"""Identifiers. UUIDv7 keys sort by creation time, so keyset pagination by id is stable."""

import os
import time
import uuid

import uuid6

# UUIDv7 (RFC 9562): 48-bit Unix time in ms, version 7, 12 random bits, variant 0b10,
# 62 random bits.
_VERSION_7 = 0x7 << 76
_VARIANT = 0b10 << 62
_LOW_62 = (1 << 62) - 1


def new_id() -> uuid.UUID:
    return uuid.UUID(bytes=uuid6.uuid7().bytes)


def new_id_hexes(count: int) -> list[str]:
    """``count`` new UUIDv7 ids as 32 hex digits, for rows written in bulk (PostgreSQL reads
    them as uuid): a fraction of the CPU of ``count`` calls to ``new_id`` (one clock read,
    one read of random bytes).

    They all carry this millisecond, so they are in no particular order among themselves:
    for rows that nothing pages through by id in the order they were written (``new_id``
    gives those increasing ids).
    """
    head = ((time.time_ns() // 1_000_000) & 0xFFFF_FFFF_FFFF) << 80 | _VERSION_7
    random = os.urandom(10 * count)
    from_bytes = int.from_bytes
    out = []
    for start in range(0, 10 * count, 10):
        bits = from_bytes(random[start : start + 10]) >> 6  # 74 random bits
        out.append(f"{head | (bits >> 62) << 64 | _VARIANT | (bits & _LOW_62):032x}")
    return out
