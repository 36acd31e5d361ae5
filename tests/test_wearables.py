"""Wearable summaries: units, upsert by period, Open mHealth shapes, time bounds, reading back."""

from datetime import datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from app.protocols.timing import Event
from app.sensing.models import WearableSummary
from app.staff.models import Role
from tests.conftest import World
from tests.support.ingest import Phone, pain_study, phone, recording


@pytest.fixture
def me(world: World) -> Phone:
    return phone(world, pain_study(world))


def summary(
    start: datetime, metric: str = "steps", value: float = 1200, unit: str = "count", **extra: Any
) -> dict[str, Any]:
    return {
        "metric": metric,
        "unit": unit,
        "start": start.isoformat(),
        "duration_minutes": 60,
        "value": value,
        **extra,
    }


def _rows(world: World) -> list[WearableSummary]:
    with world.session_factory() as session:
        return list(
            session.scalars(sa.select(WearableSummary).order_by(WearableSummary.start_at)).all()
        )


def test_summaries_are_stored_in_normalized_units(world: World, me: Phone) -> None:
    hour = world.clock.now()
    world.clock.advance(timedelta(hours=2))
    result = me.post(
        "wearables",
        [
            summary(hour, "steps", 1200, "steps"),
            summary(hour, "active_minutes", 0.5, "h"),
            summary(hour, "sleep_minutes", 1800, "seconds"),
            summary(hour, "sleep_efficiency", 0.87, "fraction"),
            summary(hour, "resting_heart_rate", 61, "beats/min"),
        ],
    )
    assert result["accepted"] == 5, result
    stored = {(r.metric, r.unit, r.value) for r in _rows(world)}
    assert stored == {
        ("steps", "count", 1200.0),
        ("active_minutes", "min", 30.0),
        ("sleep_minutes", "min", 30.0),
        ("sleep_efficiency", "percent", 87.0),
        ("resting_heart_rate", "bpm", 61.0),
    }
    assert all(r.end_at - r.start_at == timedelta(hours=1) for r in _rows(world))


@pytest.mark.parametrize(
    ("metric", "value", "unit", "field", "message"),
    [
        ("steps", 100, "km", "unit", "unit 'km' is not accepted for steps"),
        ("steps", -1, "count", "value", "cannot be negative"),
        ("steps", 10.5, "count", "value", "whole number"),
        ("steps", 60 * 301, "count", "value", "more than 300 per minute"),
        ("active_minutes", 61, "min", "value", "do not fit in a period of 60 minutes"),
        ("active_minutes", 3600, "min", "value", "was the value sent in seconds?"),
        ("sleep_efficiency", 101, "percent", "value", "percentage (0-100)"),
        ("resting_heart_rate", 400, "bpm", "value", "outside 20..250"),
        ("resting_heart_rate", 60, "count", "unit", "not accepted for resting_heart_rate"),
    ],
)
def test_units_and_values_are_checked(
    world: World, me: Phone, metric: str, value: float, unit: str, field: str, message: str
) -> None:
    world.clock.advance(timedelta(hours=2))
    result = me.post(
        "wearables", [summary(world.clock.now() - timedelta(hours=1), metric, value, unit)]
    )
    item = result["items"][0]
    assert item["status"] == "rejected"
    assert item["errors"][0]["field"] == f"body.items[0].{field}"
    assert message in item["errors"][0]["message"]


def test_schema_errors(world: World, me: Phone) -> None:
    start = world.clock.now()
    bad = [
        summary(start, metric="blood_pressure"),
        {**summary(start), "value": "lots"},
        {**summary(start), "duration_minutes": 0},
        {k: v for k, v in summary(start).items() if k != "unit"},
    ]
    result = me.post("wearables", bad)["items"]
    assert [r["status"] for r in result] == ["rejected"] * 4
    assert [r["errors"][0]["field"] for r in result] == [
        "body.items[0].metric",
        "body.items[1].value",
        "body.items[2].duration_minutes",
        "body.items[3].unit",
    ]


def test_a_resync_of_the_same_period_replaces_the_value(world: World, me: Phone) -> None:
    hour = world.clock.now()
    world.clock.advance(timedelta(hours=2))
    first = me.post("wearables", [summary(hour, value=1000)])["items"][0]
    assert first["status"] == "accepted"
    assert "replaced" in first
    assert first["replaced"] is False
    same = me.post("wearables", [summary(hour, value=1000)])["items"][0]
    assert same["status"] == "duplicate"
    assert same["id"] == first["id"]
    world.clock.advance(timedelta(minutes=5))
    corrected = me.post("wearables", [summary(hour, value=1500, client_id="resync")])["items"][0]
    assert corrected["status"] == "accepted"
    assert corrected["replaced"] is True
    assert corrected["id"] == first["id"]
    [row] = _rows(world)
    assert row.value == 1500.0
    assert row.client_id == "resync"
    assert row.updated_at == world.clock.now()
    assert row.received_at == world.clock.now() - timedelta(minutes=5)
    # Another metric or another period is another summary.
    me.post(
        "wearables",
        [summary(hour, "active_minutes", 10, "min"), summary(hour + timedelta(hours=1), value=5)],
    )
    assert len(_rows(world)) == 3


def test_the_last_summary_for_a_period_in_a_batch_wins(world: World, me: Phone) -> None:
    hour = world.clock.now()
    world.clock.advance(timedelta(hours=2))
    result = me.post(
        "wearables", [summary(hour, value=10), summary(hour, value=20), summary(hour, value=20)]
    )
    assert [r["status"] for r in result["items"]] == ["accepted", "accepted", "duplicate"]
    assert result["items"][1]["replaced"] is True
    assert len({r["id"] for r in result["items"]}) == 1
    [row] = _rows(world)
    assert row.value == 20.0


def test_time_bounds(world: World, me: Phone) -> None:
    now = world.clock.now()
    day_start = now.replace(hour=0)  # the enrollment day began before enrollment
    result = me.post(
        "wearables",
        [
            {**summary(day_start), "duration_minutes": 12 * 60, "value": 5000},
            summary(now - timedelta(hours=3)),  # ended two hours before enrollment
            summary(now + timedelta(minutes=30)),  # ends in the future
        ],
    )["items"]
    assert [r["status"] for r in result] == ["accepted", "rejected", "rejected"]
    assert "before the participant enrolled" in result[1]["errors"][0]["message"]
    assert "in the future" in result[2]["errors"][0]["message"]


OMH_STEPS: dict[str, Any] = {
    "header": {
        "id": "a1b2c3d4-0000-4000-8000-000000000001",
        "creation_date_time": "2026-03-01T14:01:00+01:00",
        "schema_id": {"namespace": "omh", "name": "step-count", "version": "2.0"},
        "acquisition_provenance": {"source_name": "Phone pedometer", "modality": "sensed"},
    },
    "body": {
        "step_count": 2345,
        "effective_time_frame": {
            "time_interval": {
                "start_date_time": "2026-03-01T13:00:00+01:00",
                "end_date_time": "2026-03-01T14:00:00+01:00",
            }
        },
    },
}
OMH_STEPS_3: dict[str, Any] = {
    "header": {
        "id": "a1b2c3d4-0000-4000-8000-000000000002",
        "schema_id": {"namespace": "omh", "name": "step-count", "version": "3.0"},
    },
    "body": {
        "step_count": {"value": 345, "unit": "steps"},
        "effective_time_frame": {
            "time_interval": {
                "start_date_time": "2026-03-01T14:00:00+01:00",
                "duration": {"value": 30, "unit": "min"},
            }
        },
    },
}
OMH_SLEEP: dict[str, Any] = {
    "sleep_duration": {"value": 7.5, "unit": "h"},
    "effective_time_frame": {
        "time_interval": {
            "end_date_time": "2026-03-02T07:00:00+01:00",
            "duration": {"value": 9, "unit": "h"},
        }
    },
}
OMH_RESTING_HR: dict[str, Any] = {
    "header": {
        "id": "a1b2c3d4-0000-4000-8000-000000000003",
        "schema_id": {"namespace": "omh", "name": "heart-rate", "version": "2.0"},
    },
    "body": {
        "heart_rate": {"value": 58, "unit": "beats/min"},
        "temporal_relationship_to_physical_activity": "at rest",
        "descriptive_statistic": "average",
        "effective_time_frame": {
            "time_interval": {
                "start_date_time": "2026-03-01T00:00:00+01:00",
                "end_date_time": "2026-03-02T00:00:00+01:00",
            }
        },
    },
}


def test_open_mhealth_data_points_are_accepted_unchanged(world: World, me: Phone) -> None:
    world.clock.advance(timedelta(days=1))
    result = me.post("wearables", [OMH_STEPS, OMH_STEPS_3, OMH_SLEEP, OMH_RESTING_HR])
    assert result["accepted"] == 4, result
    assert [r["client_id"] for r in result["items"]] == [
        OMH_STEPS["header"]["id"],
        OMH_STEPS_3["header"]["id"],
        None,
        OMH_RESTING_HR["header"]["id"],
    ]
    rows = {r.metric: r for r in _rows(world) if r.metric != "steps"}
    steps = sorted((r for r in _rows(world) if r.metric == "steps"), key=lambda r: r.start_at)
    assert [(s.value, s.end_at - s.start_at) for s in steps] == [
        (2345.0, timedelta(hours=1)),
        (345.0, timedelta(minutes=30)),
    ]
    sleep = rows["sleep_minutes"]
    assert (sleep.value, sleep.unit, sleep.end_at - sleep.start_at) == (
        450.0,
        "min",
        timedelta(hours=9),
    )
    assert rows["resting_heart_rate"].value == 58.0
    assert {r.source_format for r in _rows(world)} == {"omh"}
    # Sent again (devices re-sync), nothing changes.
    again = me.post("wearables", [OMH_STEPS, OMH_STEPS_3, OMH_SLEEP, OMH_RESTING_HR])
    assert again["duplicate"] == 4


@pytest.mark.parametrize(
    ("point", "field", "message"),
    [
        (
            {
                **OMH_STEPS,
                "header": {
                    **OMH_STEPS["header"],
                    "schema_id": {"namespace": "omh", "name": "blood-glucose", "version": "1.0"},
                },
            },
            "header.schema_id.name",
            "'blood-glucose' is not accepted",
        ),
        (
            {
                "heart_rate": {"value": 140, "unit": "beats/min"},
                "temporal_relationship_to_physical_activity": "during exercise",
                "effective_time_frame": {"date_time": "2026-03-01T13:00:00+01:00"},
            },
            "temporal_relationship_to_physical_activity",
            "resting heart rate only",
        ),
        (
            {
                "step_count": 100,
                "descriptive_statistic": "maximum",
                "effective_time_frame": OMH_STEPS["body"]["effective_time_frame"],
            },
            "descriptive_statistic",
            "a maximum is not a steps summary",
        ),
        (
            {
                "step_count": 100,
                "effective_time_frame": {
                    "time_interval": {"date": "2026-03-01", "part_of_day": "morning"}
                },
            },
            "effective_time_frame.time_interval",
            "part_of_day is not precise enough",
        ),
        (
            {
                "sleep_duration": {"value": 7, "unit": "wk"},
                "effective_time_frame": OMH_SLEEP["effective_time_frame"],
            },
            "sleep_duration.unit",
            "unit 'wk' is not accepted",
        ),
        (
            {
                "step_count": "many",
                "effective_time_frame": OMH_STEPS["body"]["effective_time_frame"],
            },
            "step_count",
            "",
        ),
        ({**OMH_STEPS, "body": ["not", "an", "object"]}, "body", "valid dictionary"),
    ],
)
def test_open_mhealth_problems_name_the_field(
    world: World, me: Phone, point: dict[str, Any], field: str, message: str
) -> None:
    world.clock.advance(timedelta(days=1))
    item = me.post("wearables", [point])["items"][0]
    assert item["status"] == "rejected"
    prefix = (
        "body."
        if "header" in point and field != "header.schema_id.name" and field != "body"
        else ""
    )
    fields = [e["field"] for e in item["errors"]]
    assert any(f.startswith(f"body.items[0].{prefix}{field}") for f in fields), fields
    assert any(message in e["message"] for e in item["errors"]), item["errors"]


def test_one_event_per_batch_and_none_for_duplicates(world: World, me: Phone) -> None:
    hour = world.clock.now()
    world.clock.advance(timedelta(hours=3))
    with recording(Event.wearable_received) as recorder:
        result = me.post("wearables", [summary(hour), summary(hour + timedelta(hours=1))])
        me.post("wearables", [summary(hour), summary(hour + timedelta(hours=1))])
    [event] = recorder.events
    assert str(event.reference_id) == result["items"][1]["id"]  # the latest period
    assert event.occurred_at == world.clock.now()


def test_reading_back_with_filters(world: World, me: Phone) -> None:
    start = world.clock.now()
    world.clock.advance(timedelta(days=1))
    me.post(
        "wearables",
        [summary(start + timedelta(hours=h)) for h in range(6)]
        + [summary(start, "resting_heart_rate", 60, "bpm")],
    )
    own = world.client.get(
        "/v1/me/wearables", params={"metric": "steps", "limit": 4}, headers=me.headers
    ).json()
    assert len(own["items"]) == 4
    assert own["next_cursor"]
    assert own["items"][0]["unit"] == "count"
    other = phone(world, me.study_id)
    assert world.client.get("/v1/me/wearables", headers=other.headers).json()["items"] == []
    staff = world.client.get(
        f"/v1/studies/{me.study_id}/participants/{me.id}/wearables",
        params={"since": (start + timedelta(hours=4)).isoformat()},
        headers=world.staff(Role.coordinator),
    ).json()
    assert [i["metric"] for i in staff["items"]] == ["steps"] * 3
