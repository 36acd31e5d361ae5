"""Pure schedule expansion: a protocol's timing blocks on one local date become slots.

A slot is one EMA prompt or decision point on one local date, named by a stable key. Its
UTC due time comes from the local date and time in the participant's IANA zone:

- a local time that does not exist (the clock jumps forward over it) moves forward by the
  length of the jump (PEP 495, fold=0: 02:30 on a spring-forward night in Chicago is 03:30);
- a local time that happens twice (the clock falls back) fires once, at its first
  occurrence (fold=0);
- a moved slot that lands on the instant of another slot of the same schedule is merged
  into it: one of them fires (the one at its own wall-clock time), the other is kept as a
  cancelled row saying where it went, and the one that fires records what it stands for
  (``draw["merged"]``). New York 02:00 and 03:00 on 2026-03-08 fire once, at 03:00 EDT;
- a slot whose moved time would leave its local date (only a date the zone skips
  altogether, as Samoa skipped 2011-12-30) does not fire either; its row says why.

So no schedule ever has two slots at one instant, and every (schedule, date, index) still
has its row. See docs/decisions/0009-dst-slots.md.

Random moments are drawn from a generator seeded by (study seed, participant, slot), so a
draw can be re-derived and audited; the draw is stored with the row. Their spacing
(``min_spacing_minutes``, and never the same instant as another slot) is measured in
elapsed time, so a draw in a spring-forward gap cannot land on a fixed time.
"""

import functools
import hashlib
import itertools
import random
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
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
    # Set when the slot does not fire (DST): it is stored as a cancelled row with this
    # reason. ``merged_into`` is the key of the slot of the same schedule that fires at its
    # instant instead (None when the slot's local date does not exist at all).
    cancel_reason: str | None = None
    merged_into: str | None = None

    @property
    def fires(self) -> bool:
        return self.cancel_reason is None


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
    rng: random.Random,
    start: int,
    end: int,
    count: int,
    spacing: int,
    avoid: list[int],
    elapsed: Callable[[int], int] | None = None,
) -> tuple[list[int], str]:
    """``count`` distinct minutes in [start, end), ``spacing`` apart from each other and from
    ``avoid`` (the fixed times), and never at the instant of one of them; returns the
    minutes in draw order and the method used.

    ``elapsed`` maps a minute of the local day to the minute it really happens at (the UTC
    minute), so spacing is measured in elapsed time across a DST change; without it (and on
    a day without a change) it is the minute of the day itself."""
    at = elapsed or (lambda minute: minute)
    candidates = range(start, end)
    fixed = [at(m) for m in avoid]
    for _ in range(_MAX_DRAW_TRIES):
        picked = rng.sample(candidates, count) if count <= len(candidates) else []
        if len(picked) == count and _spaced([at(m) for m in picked], spacing, fixed):
            return picked, "uniform"
    # The window is too crowded for rejection sampling: spread the moments evenly.
    step = (end - start) / count
    return [start + int(step * i + step / 2) for i in range(count)], "even"


def _spaced(instants: list[int], spacing: int, avoid: list[int]) -> bool:
    # Two moments at one instant would be two slots at one instant: at least a minute apart.
    apart = max(spacing, 1)
    ordered = sorted(instants)
    if any(b - a < apart for a, b in itertools.pairwise(ordered)):
        return False
    return all(abs(m - fixed) >= apart for m in instants for fixed in avoid)


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
    names the same moment whatever the draw. Every moment gets its slot; the ones that do
    not fire because of a DST change say why (``cancel_reason``, see the module docstring),
    so the slots that fire are at distinct instants.
    """
    prefix = f"{kind_prefix(kind)}:{block.id}:{day.isoformat()}"
    elapsed = _elapsed_minutes(day, zone)
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
            elapsed,
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
    return _resolve_collisions(slots, zone)


def _elapsed_minutes(day: date, zone: ZoneInfo) -> Callable[[int], int]:
    """Minute of the local day -> the UTC minute it fires at (cached: the draw asks often)."""

    @functools.cache
    def elapsed(minute: int) -> int:
        return int(local_to_utc(day, _time_of(minute), zone).timestamp()) // 60

    return elapsed


def _wall(slot: Slot, zone: ZoneInfo) -> datetime:
    """The participant's wall-clock time when the slot fires (naive)."""
    return slot.due_at.astimezone(zone).replace(tzinfo=None)


def _moved(slot: Slot, zone: ZoneInfo) -> bool:
    """Whether the slot's local time does not exist on its date (it fires later)."""
    return _wall(slot, zone) != datetime.combine(slot.local_date, slot.local_time)


def _resolve_collisions(slots: list[Slot], zone: ZoneInfo) -> list[Slot]:
    """One slot per instant: a moved slot landing on another slot's instant is merged into
    it, and a slot moved off its local date does not fire (see the module docstring)."""
    by_instant: dict[datetime, list[int]] = {}
    resolved = list(slots)
    for index, slot in enumerate(slots):
        wall = _wall(slot, zone)
        if wall.date() != slot.local_date:
            resolved[index] = replace(
                slot,
                cancel_reason=(
                    f"dst: {slot.local_time:%H:%M} on {slot.local_date} does not exist in "
                    f"{zone.key} (the clocks skip it); it would fall on {wall:%Y-%m-%d %H:%M}"
                ),
            )
            continue
        by_instant.setdefault(slot.due_at, []).append(index)
    for indexes in by_instant.values():
        if len(indexes) < 2:
            continue
        # The slot at its own wall-clock time fires; among equals the first (fixed times
        # come before draws).
        kept = min(indexes, key=lambda i: (_moved(slots[i], zone), i))
        survivor = slots[kept]
        merged = []
        for index in indexes:
            if index == kept:
                continue
            slot = slots[index]
            wall = _wall(slot, zone)
            why = (
                f"{slot.local_time:%H:%M} does not exist on {slot.local_date} in {zone.key} "
                f"(the clocks jump forward); moved to {wall:%H:%M}, it"
                if _moved(slot, zone)
                else "it"
            )
            resolved[index] = replace(
                slot,
                cancel_reason=(
                    f"dst: merged into {survivor.slot_key}: {why} falls on the same instant "
                    f"({wall:%H:%M} local, {slot.due_at:%Y-%m-%dT%H:%MZ})"
                ),
                merged_into=survivor.slot_key,
            )
            merged.append({"slot_key": slot.slot_key, "local_time": f"{slot.local_time:%H:%M}"})
        resolved[kept] = replace(survivor, draw={**(survivor.draw or {}), "merged": merged})
    return resolved


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
