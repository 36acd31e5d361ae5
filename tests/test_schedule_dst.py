"""DST and schedule slots: one slot per instant, nothing lost or doubled except as documented
(docs/decisions/0009-dst-slots.md). Pure expansion, no database; the rows the merge leaves
are tested through the worker in tests/test_scheduling.py."""

import functools
import itertools
import uuid
from collections import Counter
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, available_timezones

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from app.protocols.primitives import format_minute
from app.scheduling.models import ItemKind
from app.scheduling.planning import desired_slots
from app.scheduling.slots import Slot, derived_seed, local_to_utc, slots_on_day
from tests.test_schedule_slots import participant, protocol, utc

# The collisions: the first time falls in a spring-forward gap and, moved forward by
# the gap, lands on the second. (zone, date, times, the instant both would fire at.)
COLLISIONS = [
    ("America/New_York", date(2026, 3, 8), ["02:00", "03:00"], utc(2026, 3, 8, 7)),
    ("Europe/London", date(2026, 3, 29), ["01:00", "02:00"], utc(2026, 3, 29, 1)),
    # Lord Howe moves its clocks by 30 minutes (02:00 -> 02:30).
    ("Australia/Lord_Howe", date(2026, 10, 4), ["02:00", "02:30"], utc(2026, 10, 3, 15, 30)),
    # Santiago jumps at midnight (00:00 -> 01:00).
    ("America/Santiago", date(2026, 9, 6), ["00:00", "01:00"], utc(2026, 9, 6, 4)),
    # Chatham jumps by an hour at 02:45 (+12:45 -> +13:45).
    ("Pacific/Chatham", date(2026, 9, 27), ["03:00", "04:00"], utc(2026, 9, 26, 14, 15)),
]


def day_slots(zone: str, day: date, times: list[str], **kwargs: Any) -> list[Slot]:
    doc = protocol(times, **kwargs)
    return slots_on_day(
        doc.decision_points[0],
        ItemKind.decision_point,
        day,
        ZoneInfo(zone),
        study_seed=doc.study.random_seed,
        participant_id=uuid.UUID(int=42),
    )


@pytest.mark.parametrize(("zone", "day", "times", "instant"), COLLISIONS)
def test_a_moved_slot_landing_on_the_next_is_merged_into_it(
    zone: str, day: date, times: list[str], instant: datetime
) -> None:
    moved, kept = day_slots(zone, day, times)
    # Both would fire at one instant: the one at its own wall-clock time fires.
    assert moved.due_at == kept.due_at == instant
    assert kept.fires
    assert kept.merged_into is None
    assert kept.draw == {"merged": [{"slot_key": moved.slot_key, "local_time": times[0]}]}
    assert not moved.fires
    assert moved.merged_into == kept.slot_key
    assert moved.cancel_reason is not None
    assert moved.cancel_reason.startswith(f"dst: merged into {kept.slot_key}: {times[0]} ")
    assert "does not exist" in moved.cancel_reason
    # The day before and after, both fire at their own times.
    for other in (day - timedelta(days=7), day + timedelta(days=7)):
        first, second = day_slots(zone, other, times)
        assert first.fires
        assert second.fires
        assert first.due_at < second.due_at
        assert first.draw is None
        assert second.draw is None


@pytest.mark.parametrize(("zone", "day", "times", "instant"), COLLISIONS)
def test_the_planner_fires_a_colliding_schedule_once(
    zone: str, day: date, times: list[str], instant: datetime
) -> None:
    person = participant(zone, utc(2026, 1, 1))
    doc = protocol(times, ema_times=times)
    slots = desired_slots(person, doc, instant - timedelta(days=1), instant + timedelta(days=1))
    for kind in ItemKind:
        at_instant = [s for s in slots if s.kind is kind and s.due_at == instant]
        assert len(at_instant) == 2
        assert [s.fires for s in at_instant] == [False, True]
        firing = [s.due_at for s in slots if s.kind is kind and s.fires]
        assert len(firing) == len(set(firing))


def test_a_skipped_date_fires_nothing_and_says_why() -> None:
    """Samoa skipped 2011-12-30 (UTC-10 -> UTC+14): its 09:00 would be the 31st's 09:00."""
    person = participant("Pacific/Apia", utc(2011, 12, 1))
    doc = protocol(["09:00"], duration_days=60)
    slots = desired_slots(person, doc, utc(2011, 12, 28), utc(2012, 1, 2))
    by_date = {s.local_date: s for s in slots}
    skipped = by_date[date(2011, 12, 30)]
    assert not skipped.fires
    assert skipped.merged_into is None
    assert skipped.cancel_reason == (
        "dst: 09:00 on 2011-12-30 does not exist in Pacific/Apia (the clocks skip it); "
        "it would fall on 2011-12-31 09:00"
    )
    firing = [s.due_at for s in slots if s.fires]
    assert len(firing) == len(set(firing)) == 5  # 28, 29, 31 December, 1 and 2 January
    assert by_date[date(2011, 12, 31)].fires


def test_random_moments_in_a_gap_keep_their_spacing_in_elapsed_time() -> None:
    """A moment drawn in the gap (02:xx, which is 03:xx) must not land on the 03:30 fixed
    time or on another moment; min_spacing_minutes holds in real minutes."""
    zone = ZoneInfo("America/New_York")
    day = date(2026, 3, 8)
    for spacing in (0, 20):
        doc = protocol(["03:30"], [{"start": "01:30", "end": "03:20", "count": 3}], spacing=spacing)
        moved = crowded = 0
        for n in range(200):
            slots = slots_on_day(
                doc.decision_points[0],
                ItemKind.decision_point,
                day,
                zone,
                study_seed=7,
                participant_id=uuid.UUID(int=n),
            )
            assert all(s.fires for s in slots)
            instants = sorted(s.due_at for s in slots)
            assert all(a < b for a, b in itertools.pairwise(instants))
            if all(s.draw["method"] == "uniform" for s in slots if s.draw):
                apart = timedelta(minutes=max(spacing, 1))
                assert all(b - a >= apart for a, b in itertools.pairwise(instants))
            else:  # too crowded for rejection sampling: spread evenly (spacing not kept)
                crowded += 1
            moved += sum(1 for s in slots if s.draw and 120 <= s.draw["minute"] < 180)
        assert moved > 50  # the gap was drawn into often
        assert crowded < 10


@pytest.mark.parametrize(
    ("zone", "day", "at"),
    [
        ("America/New_York", date(2026, 11, 1), "01:30"),
        ("Europe/London", date(2026, 10, 25), "01:00"),
        ("Australia/Lord_Howe", date(2026, 4, 5), "01:45"),
        # Santiago falls back at midnight: 23:00-23:59 of the 4th happen twice.
        ("America/Santiago", date(2026, 4, 4), "23:30"),
    ],
)
def test_a_repeated_local_time_fires_once_at_its_first_occurrence(
    zone: str, day: date, at: str
) -> None:
    tz = ZoneInfo(zone)
    naive = datetime.combine(day, time.fromisoformat(at))
    first = naive.replace(tzinfo=tz, fold=0).astimezone(UTC)
    second = naive.replace(tzinfo=tz, fold=1).astimezone(UTC)
    assert first < second  # it really happens twice
    person = participant(zone, utc(2026, 1, 1))
    doc = protocol([at], [{"start": "12:00", "end": "13:00"}])
    slots = desired_slots(person, doc, first - timedelta(days=1), second + timedelta(days=1))
    on_day = [s for s in slots if s.local_date == day and s.draw is None]
    assert [(s.due_at, s.fires) for s in on_day] == [(first, True)]


# --- properties over every zone, 1970-2037 ---------------------------------------------

ALL_ZONES = sorted(available_timezones() - {"Factory", "localtime"})
FIRST, LAST = datetime(1970, 1, 1, tzinfo=UTC), datetime(2038, 1, 1, tzinfo=UTC)


@functools.cache
def transitions(zone: str) -> list[tuple[datetime, timedelta, timedelta]]:
    """(instant, offset before, offset after) of the zone's changes 1970-2037 (weekly
    probes, bisected to the second; two changes in one week would be missed)."""
    tz = ZoneInfo(zone)
    found = []
    t = FIRST
    before = t.astimezone(tz).utcoffset()
    while t < LAST:
        probe = t + timedelta(days=7)
        after = probe.astimezone(tz).utcoffset()
        if after != before:
            low, high = t, probe
            while high - low > timedelta(seconds=1):
                mid = low + timedelta(seconds=(high - low) // timedelta(seconds=1) // 2)
                if mid.astimezone(tz).utcoffset() == before:
                    low = mid
                else:
                    high = mid
            assert before is not None
            assert after is not None
            found.append((high, before, after))
        t, before = probe, after
    return found


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[str, date, list[str], dict[str, Any] | None, int]:
    """A zone, a local date at one of its transitions (or any date), and a schedule whose
    times crowd around the transition's wall-clock time."""
    zone = draw(st.sampled_from(ALL_ZONES))
    changes = transitions(zone)
    fixed: set[int] = set()
    if changes and draw(st.integers(0, 9)) > 0:
        instant, before, after = draw(st.sampled_from(changes))
        # The wall clock at the change: the start of a gap, or the end of a fold's first pass.
        wall = (instant + before).replace(tzinfo=None)
        day = wall.date()
        around = wall.hour * 60 + wall.minute + (1 if wall.second else 0)
        jump = int((after - before).total_seconds() // 60)
        if jump > 0:  # a gap: times in it, and where they land (the collisions)
            for t in draw(st.lists(st.integers(around, around + jump - 1), max_size=3)):
                fixed.add(t)
                if draw(st.booleans()):
                    fixed.add(t + jump)
        else:  # a fold: times that happen twice
            fixed.update(draw(st.lists(st.integers(around + jump, around - 1), max_size=3)))
    else:
        day = draw(st.dates(date(1970, 1, 2), date(2037, 12, 30)))
        around = draw(st.integers(0, 24 * 60 - 1))
    near = st.integers(max(0, around - 150), min(24 * 60 - 1, around + 150))
    fixed.update(
        draw(st.lists(near, max_size=3)) + draw(st.lists(st.integers(0, 1439), max_size=2))
    )
    fixed = {m for m in fixed if 0 <= m < 24 * 60}
    window: dict[str, Any] | None = None
    spacing = draw(st.integers(0, 60))
    if draw(st.booleans()):
        start = draw(st.integers(max(0, around - 150), min(24 * 60 - 4, around + 150)))
        count = draw(st.integers(1, 3))
        end = draw(st.integers(start + count, min(24 * 60 - 1, start + 240)))
        window = {"start": format_minute(start), "end": format_minute(end), "count": count}
        fixed = {m for m in fixed if not start <= m < end}
        # The protocol's own check: the moments must fit the window at that spacing.
        spacing = min(spacing, (end - start) // max(1, count - 1))
    times = [format_minute(m) for m in sorted(fixed)] or ([] if window else ["12:00"])
    return zone, day, times, window, spacing


def exists(day: date, at: time, tz: ZoneInfo) -> bool:
    naive = datetime.combine(day, at)
    return local_to_utc(day, at, tz).astimezone(tz).replace(tzinfo=None) == naive


@settings(max_examples=250, deadline=None)
@given(scenario=scenarios())
@example(scenario=("America/New_York", date(2026, 3, 8), ["02:00", "03:00"], None, 0))
@example(scenario=("Europe/London", date(2026, 3, 29), ["01:00", "02:00"], None, 0))
@example(scenario=("Australia/Lord_Howe", date(2026, 10, 4), ["02:00", "02:30"], None, 0))
@example(scenario=("America/Santiago", date(2026, 9, 6), ["00:00", "01:00"], None, 0))
@example(scenario=("Pacific/Apia", date(2011, 12, 30), ["09:00"], None, 0))
@example(scenario=("Antarctica/Troll", date(2026, 3, 29), ["01:00", "03:00"], None, 0))
@example(
    scenario=(
        "America/New_York",
        date(2026, 3, 8),
        ["03:00", "03:30"],
        {"start": "01:00", "end": "02:59", "count": 3},
        0,
    )
)
def test_one_slot_per_instant_and_per_planned_time_in_every_zone(
    scenario: tuple[str, date, list[str], dict[str, Any] | None, int],
) -> None:
    zone, day, times, window, spacing = scenario
    tz = ZoneInfo(zone)
    doc = protocol(times, [window] if window else [], spacing=spacing)
    block = doc.decision_points[0]
    planned = len(times) + (window["count"] if window else 0)
    person = participant(zone, datetime(1969, 12, 1, tzinfo=UTC))

    def expand(d: date) -> list[Slot]:
        return slots_on_day(
            block,
            ItemKind.decision_point,
            d,
            tz,
            study_seed=doc.study.random_seed,
            participant_id=person.id,
        )

    dates = [day + timedelta(days=n) for n in range(-2, 3)]
    slots = [s for d in dates for s in expand(d)]
    # Re-derivable: the same seed gives the same slots, draws and decisions.
    assert slots == [s for d in dates for s in expand(d)]
    firing = {s.slot_key: s for s in slots if s.fires}
    for d in dates:
        on_day = [s for s in slots if s.local_date == d]
        # Every planned time of every day has its slot (firing or not), under its own key.
        assert len(on_day) == planned
        assert len({s.slot_key for s in on_day}) == planned
    # No two slots of the schedule fire at one instant, across days too.
    instants = sorted(s.due_at for s in firing.values())
    assert all(a < b for a, b in itertools.pairwise(instants))
    for slot in slots:
        naive = datetime.combine(slot.local_date, slot.local_time)
        wall = slot.due_at.astimezone(tz).replace(tzinfo=None)
        if exists(slot.local_date, slot.local_time, tz):
            # An existing time fires at its first occurrence (fold=0), never moved.
            first = naive.replace(tzinfo=tz, fold=0).astimezone(UTC)
            later = naive.replace(tzinfo=tz, fold=1).astimezone(UTC)
            assert wall == naive
            assert slot.due_at == min(first, later)
        else:
            # A time in a gap moves forward by the length of the gap, never backward.
            jump = tz.utcoffset(wall) - tz.utcoffset(naive)  # type: ignore[operator]
            assert wall - naive == jump > timedelta(0)
        if slot.fires:
            assert slot.merged_into is None
            assert slot.cancel_reason is None
            continue
        # The only slots that do not fire are the documented ones.
        assert slot.cancel_reason is not None
        assert slot.cancel_reason.startswith("dst: ")
        if slot.merged_into is not None:
            survivor = firing[slot.merged_into]
            assert survivor.due_at == slot.due_at
            assert survivor.local_date == slot.local_date
            assert {"slot_key": slot.slot_key, "local_time": f"{slot.local_time:%H:%M}"} in (
                survivor.draw or {}
            )["merged"]
        else:
            assert wall.date() != slot.local_date  # moved off a date the zone skips
    for slot in firing.values():
        if slot.draw is None or "seed" not in slot.draw:
            continue
        seed = derived_seed(doc.study.random_seed, person.id, slot.draw["seeded_by"])
        assert slot.draw["seed"] == f"{seed:016x}"
        if slot.draw["method"] == "uniform":
            # Spacing from the day's other firing slots holds in elapsed time.
            gap = timedelta(minutes=max(spacing, 1))
            others = [o for o in firing.values() if o.local_date == slot.local_date]
            assert all(abs(slot.due_at - o.due_at) >= gap for o in others if o is not slot)
    # The planner (over a range, in pieces) agrees with the day function.
    start = local_to_utc(dates[1], time(0), tz)
    end = local_to_utc(dates[-1], time(0), tz)
    person.enrolled_at = start - timedelta(days=10)
    expanded = desired_slots(person, doc, start, end)
    assert {s.slot_key: s for s in expanded} == {
        s.slot_key: s for s in slots if start <= s.due_at < end
    }
    counts = Counter(s.due_at for s in expanded if s.fires)
    assert all(n == 1 for n in counts.values())


def test_draws_on_ordinary_days_are_what_they_were_before_elapsed_spacing() -> None:
    """Re-derivability: spacing in elapsed time changes nothing on a day without a clock
    change (values computed by the code before it)."""
    doc = protocol(
        ["08:00"],
        [
            {"start": "10:30", "end": "12:00", "count": 2},
            {"start": "01:00", "end": "03:30", "count": 2},
        ],
        spacing=20,
    )
    person = participant("Europe/London", utc(2026, 3, 1))
    slots = desired_slots(person, doc, utc(2026, 3, 20), utc(2026, 3, 21))
    assert [(s.slot_key, s.due_at, s.draw["minute"]) for s in slots if s.draw] == [
        ("dp:dp:2026-03-20:1", utc(2026, 3, 20, 11, 45), 705),
        ("dp:dp:2026-03-20:2", utc(2026, 3, 20, 11, 7), 667),
        ("dp:dp:2026-03-20:3", utc(2026, 3, 20, 1, 40), 100),
        ("dp:dp:2026-03-20:4", utc(2026, 3, 20, 3, 12), 192),
    ]
