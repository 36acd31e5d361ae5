"""Identifiers: UUIDv7 (RFC 9562), which sort by the time they were made, so keyset
pagination by id is stable and follows the order rows were made.

Made here rather than by a library because ids must keep to the wall clock under load.
uuid6's ``uuid7`` moves its millisecond on by one for every further id made within the
same millisecond. At thousands of ids a second its clock ran minutes ahead, and a process
that was not busy made smaller ids than one that was. Here, within a millisecond, a 12-bit
counter started at a random value in its lower half keeps a process's ids increasing
(RFC 9562, section 6.2, method 1); the remaining 62 bits are random.
"""

import os
import secrets
import threading
import time
import uuid

_VERSION_7 = 0x7 << 76
_VARIANT = 0b10 << 62
_COUNTER_MAX = 0xFFF
# A block of ids never takes more than half the counter, so a fresh millisecond holds it.
_BLOCK = 2048

_lock = threading.Lock()
_last_ms = 0
_counter = 0


def _reserve(count: int) -> tuple[int, int]:
    """A millisecond and the first of ``count`` (at most ``_BLOCK``) consecutive counter
    values in it, all after every id handed out before in this process."""
    global _last_ms, _counter
    now_ms = time.time_ns() // 1_000_000
    with _lock:
        if now_ms > _last_ms:
            _last_ms, first = now_ms, secrets.randbits(11)
        else:
            # The same millisecond (or the clock stepped back): count on from the last id.
            first = _counter + 1
        if first + count - 1 > _COUNTER_MAX:
            # More than 4096 ids in a millisecond: borrow the next one.
            _last_ms, first = _last_ms + 1, 0
        _counter = first + count - 1
        return _last_ms, first


def new_id() -> uuid.UUID:
    ms, counter = _reserve(1)
    return uuid.UUID(int=ms << 80 | _VERSION_7 | counter << 64 | _VARIANT | secrets.randbits(62))


def new_id_hexes(count: int) -> list[str]:
    """``count`` new ids as 32 hex digits, in increasing order, for rows written in bulk
    (PostgreSQL reads them as uuid): a fraction of the CPU of ``count`` calls to ``new_id``.
    They sort after every id made before them and before every id made after them."""
    hexes: list[str] = []
    from_bytes = int.from_bytes
    while count > 0:
        size = min(count, _BLOCK)
        ms, first = _reserve(size)
        head = ms << 80 | _VERSION_7 | _VARIANT
        random = os.urandom(8 * size)
        hexes += [
            f"{head | (first + i) << 64 | from_bytes(random[8 * i : 8 * i + 8]) >> 2:032x}"
            for i in range(size)
        ]
        count -= size
    return hexes
