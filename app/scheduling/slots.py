"""Pure schedule expansion: a protocol's timing blocks on one local date become slots.

A slot is one EMA prompt or decision point on one local date, named by a stable key. Its
UTC due time comes from the local date and time in the participant's IANA zone:

- a local time that does not exist (the clock jumps forward over it) moves forward by the
  length of the jump (PEP 495, fold=0: 02:30 on a spring-forward night in Chicago is 03:30);
- a local time that happens twice (the clock falls back) fires once, at its first
  occurrence (fold=0).

Random moments are drawn from a generator seeded by (study seed, participant, slot), so a
draw can be re-derived and audited; the draw is stored with the row.
"""

import hashlib
import itertools
import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from app.protocols.primitives import Weekday, minute_of_day
from app.protocols.timing import DecisionPoint, EmaSchedule, Timing
from app.scheduling.models import ItemKind

_WEEKDAYS = tuple(Weekday)  # mon … sun, in date.weekday() order
# Rejection sampling gives up after this many tries and falls back to even spacing.
_MAX_DRAW_TRIES = 200


@dataclass(frozen=True)
class Slot:
    kind: ItemKind
    slot_key: str
    source_id: str
    questionnaire_id: str | None
    local_date: date
    local_time: time
    due_at: datetime
    expires_at: datetime | None
    draw: dict[str, Any] | None


def kind_prefix(kind: ItemKind) -> str:
    return "ema" if kind is ItemKind.ema_prompt else "dp"


def local_to_utc(day: date, at: time, zone: ZoneInfo) -> datetime:
    """The UTC instant of a wall-clock time (gaps move forward, repeated times fire once)."""
    local = datetime.combine(day, at, tzinfo=zone).replace(fold=0)
    return local.astimezone(UTC)


def derived_seed(study_seed: int, participant_id: uuid.UUID, slot_base: str) -> int:
    digest = hashlib.sha256(f"{study_seed}:{participant_id}:{slot_base}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


def draw_minutes(
    rng: random.Random, start: int, end: int, count: int, spacing: int, avoid: list[int]
) -> tuple[list[int], str]:
    """``count`` distinct minutes in [start, end), ``spacing`` apart from each other and from
    ``avoid`` (the fixed times); returns the minutes in draw order and the method used."""
    candidates = range(start, end)
    for _ in range(_MAX_DRAW_TRIES):
        picked = rng.sample(candidates, count) if count <= len(candidates) else []
        if len(picked) == count and _spaced(picked, spacing, avoid):
            return picked, "uniform"
    # The window is too crowded for rejection sampling: spread the moments evenly.
    step = (end - start) / count
    return [start + int(step * i + step / 2) for i in range(count)], "even"


def _spaced(minutes: list[int], spacing: int, avoid: list[int]) -> bool:
    if spacing == 0:
        return True
    ordered = sorted(minutes)
    if any(b - a < spacing for a, b in itertools.pairwise(ordered)):
        return False
    return all(abs(m - fixed) >= spacing for m in minutes for fixed in avoid)


def _time_of(minute: int) -> time:
    return time(minute // 60, minute % 60)


def slots_on_day(
    block: Timing,
    kind: ItemKind,
    day: date,
    zone: ZoneInfo,
    *,
    study_seed: int,
    participant_id: uuid.UUID,
) -> list[Slot]:
    """The slots of one timing block on one local date (the caller checks the day is active).

    Keys number fixed times first, then each window's draws, in declaration order, so a key
    names the same moment whatever the draw.
    """
    prefix = f"{kind_prefix(kind)}:{block.id}:{day.isoformat()}"
    moments: list[tuple[int, dict[str, Any] | None]] = [
        (minute_of_day(t), None) for t in block.times
    ]
    fixed = [m for m, _ in moments]
    for w, window in enumerate(block.random_windows):
        base = f"{prefix}:w{w}"
        seed = derived_seed(study_seed, participant_id, base)
        minutes, method = draw_minutes(
            random.Random(seed),  # noqa: S311 (reproducible draws, not secrets)
            window.start_minute,
            window.end_minute,
            window.count,
            block.min_spacing_minutes,
            fixed,
        )
        for c, minute in enumerate(minutes):
            draw: dict[str, Any] = {
                "seed": f"{seed:016x}",
                "seeded_by": base,
                "window": f"{window.start:%H:%M}-{window.end:%H:%M}",
                "index": c,
                "minute": minute,
                "method": method,
            }
            moments.append((minute, draw))
    slots = []
    for index, (minute, slot_draw) in enumerate(moments):
        at = _time_of(minute)
        due = local_to_utc(day, at, zone)
        slots.append(
            Slot(
                kind=kind,
                slot_key=f"{prefix}:{index}",
                source_id=block.id,
                questionnaire_id=block.questionnaire if isinstance(block, EmaSchedule) else None,
                local_date=day,
                local_time=at,
                due_at=due,
                expires_at=expiry(block, due),
                draw=slot_draw,
            )
        )
    return slots


def expiry(block: Timing, due: datetime) -> datetime | None:
    """EMA prompts: answers after this are late. Decision points: run no later than this."""
    if isinstance(block, EmaSchedule):
        return due + timedelta(minutes=block.expires_after_minutes)
    if isinstance(block, DecisionPoint):
        return due + timedelta(minutes=block.grace_minutes)
    return None


def weekday_of(day: date) -> Weekday:
    return _WEEKDAYS[day.weekday()]


def local_dates(start: datetime, end: datetime, zone: ZoneInfo) -> Iterator[date]:
    """Every local date touched by [start, end), padded by a day on each side so slots
    whose local date differs from the UTC date (far east or west zones) are not missed."""
    first = start.astimezone(zone).date() - timedelta(days=1)
    last = end.astimezone(zone).date() + timedelta(days=1)
    day = first
    while day <= last:
        yield day
        day += timedelta(days=1)
