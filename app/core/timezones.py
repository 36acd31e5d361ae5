"""IANA time zone names: participants' schedules are defined in their local time."""

from functools import lru_cache
from zoneinfo import available_timezones


@lru_cache(maxsize=1)
def _known_zones() -> frozenset[str]:
    return frozenset(available_timezones())


def is_known_timezone(name: str) -> bool:
    return name in _known_zones()
