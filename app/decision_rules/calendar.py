"""Local-time helpers: study days and local midnights in the participant's time zone."""

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo


def local_midnight(day: date, zone: ZoneInfo) -> datetime:
    """The moment a local day starts (aware; convert before storing)."""
    return datetime.combine(day, time(0), tzinfo=zone)


def start_of_local_day(at: datetime, zone: ZoneInfo) -> datetime:
    return local_midnight(at.astimezone(zone).date(), zone)


def next_midnight(at: datetime, zone: ZoneInfo) -> datetime:
    """The moment the local day after ``at``'s starts."""
    return local_midnight(at.astimezone(zone).date() + timedelta(days=1), zone)


def study_day(at: datetime, enrolled_at: datetime, zone: ZoneInfo) -> int:
    """Whole local days since the enrollment day (0 on the enrollment day)."""
    return (at.astimezone(zone).date() - enrolled_at.astimezone(zone).date()).days


def baseline_end(enrolled_at: datetime, days: int, zone: ZoneInfo) -> datetime:
    """The start of study day ``days``: a baseline covers study days 0 .. days-1."""
    return local_midnight(enrolled_at.astimezone(zone).date() + timedelta(days=days), zone)
