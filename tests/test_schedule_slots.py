"""Schedule expansion in participants' time zones, across DST transitions (no database)."""

import uuid
from collections import Counter
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.participants.models import Participant, ParticipantStatus
from app.protocols import parse_protocol
from app.protocols.document import Protocol
from app.protocols.primitives import format_minute
from app.scheduling.planning import desired_slots
from app.scheduling.slots import local_to_utc

ZONES = [
    "America/Chicago",
    "Europe/London",
    "Australia/Lord_Howe",
    "Asia/Kolkata",
    "Pacific/Chatham",
]


def protocol(
    dp_times: list[str],
    windows: list[dict[str, Any]] | None = None,
    *,
    duration_days: int = 400,
    ema_times: list[str] | None = None,
    spacing: int = 0,
) -> Protocol:
    document: dict[str, Any] = {
        "kairos_protocol": 1,
        "study": {"name": "DST", "duration_days": duration_days, "random_seed": 7},
        "questionnaires": [
            {
                "id": "daily",
                "title": "Daily",
                "items": [
                    {"id": "pain", "type": "numeric_rating", "text": "Pain?", "min": 0, "max": 10}
                ],
            }
        ],
        "ema_schedules": [{"id": "evening", "questionnaire": "daily", "times": ema_times or []}]
        if ema_times
        else [],
        "decision_points": [
            {
                "id": "dp",
                "times": dp_times,
                "random_windows": windows or [],
                "min_spacing_minutes": spacing,
            }
        ],
        "intervention_options": [{"id": "nothing", "category": "none"}],
        "policy": {
            "rules": [{"id": "r", "when": "true", "option": "nothing"}],
            "fallback": {"option": "nothing"},
        },
    }
    return parse_protocol(document)


def participant(zone: str, enrolled: datetime) -> Participant:
    return Participant(
        id=uuid.UUID(int=42),
        study_id=uuid.UUID(int=1),
        code="P-1",
        timezone=zone,
        status=ParticipantStatus.active,
        enrolled_at=enrolled,
        protocol_version=1,
    )


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc, arg-type]


# (zone, local date, local time, expected UTC): nonexistent times move forward by the gap.
GAPS = [
    ("America/Chicago", date(2026, 3, 8), time(2, 30), utc(2026, 3, 8, 8, 30)),  # -> 03:30 CDT
    ("Europe/London", date(2026, 3, 29), time(1, 30), utc(2026, 3, 29, 1, 30)),  # -> 02:30 BST
    # Lord Howe moves its clocks by 30 minutes: 02:15 does not exist, it becomes 02:45.
    ("Australia/Lord_Howe", date(2026, 10, 4), time(2, 15), utc(2026, 10, 3, 15, 45)),
    # Chatham jumps from 02:45 to 03:45 (+12:45 -> +13:45): 03:00 becomes 04:00.
    ("Pacific/Chatham", date(2026, 9, 27), time(3, 0), utc(2026, 9, 26, 14, 15)),
]
# Repeated times fire once, at their first occurrence (still on summer time).
FOLDS = [
    ("America/Chicago", date(2026, 11, 1), time(1, 30), utc(2026, 11, 1, 6, 30)),
    ("Europe/London", date(2026, 10, 25), time(1, 30), utc(2026, 10, 25, 0, 30)),
    ("Australia/Lord_Howe", date(2026, 4, 5), time(1, 45), utc(2026, 4, 4, 14, 45)),
    ("Pacific/Chatham", date(2026, 4, 5), time(3, 0), utc(2026, 4, 4, 13, 15)),
]


@pytest.mark.parametrize(("zone", "day", "at", "expected"), GAPS + FOLDS)
def test_local_time_to_utc_across_transitions(
    zone: str, day: date, at: time, expected: datetime
) -> None:
    assert local_to_utc(day, at, ZoneInfo(zone)) == expected


def test_kolkata_has_no_transitions_and_a_half_hour_offset() -> None:
    zone = ZoneInfo("Asia/Kolkata")
    for day in (date(2026, 1, 15), date(2026, 7, 15)):
        assert local_to_utc(day, time(9, 0), zone) == datetime.combine(day, time(3, 30), UTC)


@pytest.mark.parametrize("zone", ZONES)
@pytest.mark.parametrize("month", [3, 4, 9, 10, 11])
def test_one_slot_per_time_per_day_through_a_transition_month(zone: str, month: int) -> None:
    times = ["00:30", "01:30", "02:15", "02:30", "03:00", "09:00", "23:45"]
    doc = protocol(times)
    person = participant(zone, utc(2026, 1, 1))
    start = datetime(2026, month, 1, tzinfo=ZoneInfo(zone)).astimezone(UTC)
    end = start + timedelta(days=30)
    slots = desired_slots(person, doc, start, end)
    keys = Counter(s.slot_key for s in slots)
    assert all(count == 1 for count in keys.values())
    per_day = Counter(s.local_date for s in slots)
    inner_days = [d for d in per_day if start.astimezone(ZoneInfo(zone)).date() < d]
    inner_days = [d for d in inner_days if d < end.astimezone(ZoneInfo(zone)).date()]
    assert all(per_day[d] == len(times) for d in inner_days)
    for slot in slots:
        # The wall time is the planned one, or later by at most the DST gap when it did not
        # exist; never earlier, never on another day's slot.
        wall = slot.due_at.astimezone(ZoneInfo(zone)).replace(tzinfo=None)
        planned = datetime.combine(slot.local_date, slot.local_time)
        assert timedelta(0) <= wall - planned <= timedelta(hours=1)


@st.composite
def schedules(draw: st.DrawFn) -> tuple[list[str], list[dict[str, Any]]]:
    fixed = draw(st.lists(st.integers(0, 12 * 60 - 1), unique=True, max_size=4))
    start = draw(st.integers(12 * 60, 20 * 60))
    end = draw(st.integers(start + 30, 24 * 60 - 1))
    count = draw(st.integers(1, 3))
    windows = [{"start": format_minute(start), "end": format_minute(end), "count": count}]
    return [format_minute(m) for m in sorted(fixed)], windows


@settings(max_examples=60, deadline=None)
@given(
    schedule=schedules(),
    zone=st.sampled_from(ZONES),
    first_day=st.dates(min_value=date(2026, 1, 1), max_value=date(2027, 12, 1)),
    split_hours=st.integers(min_value=1, max_value=20 * 24 - 1),
)
def test_expansion_in_pieces_equals_expansion_at_once(
    schedule: tuple[list[str], list[dict[str, Any]]], zone: str, first_day: date, split_hours: int
) -> None:
    """However the horizon is cut, every slot appears exactly once (no doubles, no gaps)."""
    times, windows = schedule
    doc = protocol(times or ["08:00"], windows)
    person = participant(zone, utc(2025, 12, 1))
    start = datetime.combine(first_day, time(0), UTC)
    split = start + timedelta(hours=split_hours)
    end = start + timedelta(days=20)
    whole = desired_slots(person, doc, start, end)
    pieces = desired_slots(person, doc, start, split) + desired_slots(person, doc, split, end)
    assert sorted(s.slot_key for s in whole) == sorted(s.slot_key for s in pieces)
    assert len({s.slot_key for s in whole}) == len(whole)
    assert {s.slot_key: s.due_at for s in whole} == {s.slot_key: s.due_at for s in pieces}
    for slot in whole:
        if slot.draw is not None:
            window = windows[0]
            low = int(window["start"][:2]) * 60 + int(window["start"][3:])
            high = int(window["end"][:2]) * 60 + int(window["end"][3:])
            assert low <= slot.draw["minute"] < high


def test_random_draws_are_reproducible_and_differ_by_participant() -> None:
    doc = protocol(["08:00"], [{"start": "10:30", "end": "12:00", "count": 2}], spacing=20)
    start, end = utc(2026, 3, 2), utc(2026, 3, 12)
    first = desired_slots(participant("Europe/London", utc(2026, 3, 1)), doc, start, end)
    again = desired_slots(participant("Europe/London", utc(2026, 3, 1)), doc, start, end)
    assert [(s.slot_key, s.due_at, s.draw) for s in first] == [
        (s.slot_key, s.due_at, s.draw) for s in again
    ]
    other = participant("Europe/London", utc(2026, 3, 1))
    other.id = uuid.UUID(int=43)
    drawn = [s for s in desired_slots(other, doc, start, end) if s.draw]
    assert [s.due_at for s in drawn] != [s.due_at for s in first if s.draw]
    for day in {s.local_date for s in first}:
        minutes = sorted(s.draw["minute"] for s in first if s.draw and s.local_date == day)
        assert len(minutes) == 2
        assert minutes[1] - minutes[0] >= 20
        assert all(s.draw["seed"] and s.draw["window"] == "10:30-12:00" for s in first if s.draw)


def test_study_days_weekdays_and_end_of_study() -> None:
    doc = parse_protocol(
        {
            "kairos_protocol": 1,
            "study": {"name": "Days", "duration_days": 5, "random_seed": 1},
            "questionnaires": [
                {
                    "id": "q",
                    "title": "Q",
                    "items": [
                        {
                            "id": "pain",
                            "type": "numeric_rating",
                            "text": "Pain?",
                            "min": 0,
                            "max": 10,
                        }
                    ],
                }
            ],
            "decision_points": [
                {"id": "weekdays", "times": ["09:00"], "days_of_week": ["mon", "tue", "wed"]},
                {"id": "later", "times": ["10:00"], "start_day": 2},
            ],
            "intervention_options": [{"id": "nothing", "category": "none"}],
            "policy": {
                "rules": [{"id": "r", "when": "true", "option": "nothing"}],
                "fallback": {"option": "nothing"},
            },
        }
    )
    # Enrolled Sunday 2026-03-01 in Kolkata; study days 0..4 are Sun..Thu.
    person = participant("Asia/Kolkata", utc(2026, 3, 1, 4))
    slots = desired_slots(person, doc, utc(2026, 2, 25), utc(2026, 3, 20))
    assert sorted((s.source_id, s.local_date.isoformat()) for s in slots) == [
        ("later", "2026-03-03"),
        ("later", "2026-03-04"),
        ("later", "2026-03-05"),
        ("weekdays", "2026-03-02"),
        ("weekdays", "2026-03-03"),
        ("weekdays", "2026-03-04"),
    ]
