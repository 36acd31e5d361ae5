"""Generated payloads: whatever the phone sends, ingestion answers 200, 413 or 422, never 500,
and every item gets exactly one result."""

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import World
from tests.support.ingest import Phone, ema_prompt, evening, morning, pain_study, phone

# Text, with the NUL character often (PostgreSQL cannot store it).
texts = st.text(max_size=20) | st.sampled_from(["\x00", "a\x00b"])
# Any JSON, including NaN and infinities (Python's JSON parser accepts them).
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats()
    | texts,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(texts, children, max_size=4),
    max_leaves=12,
)
times = st.one_of(
    st.datetimes(
        min_value=datetime(1, 1, 2),  # noqa: DTZ001 (bounds are naive)
        max_value=datetime(9999, 12, 30),  # noqa: DTZ001
        timezones=st.sampled_from([UTC, None]),
    ).map(lambda d: d.isoformat()),
    st.sampled_from(
        [
            "0001-01-01T00:00:00+14:00",
            "9999-12-31T23:59:59-14:00",
            "2026-03-01T12:00:00+23:59",
            "2026-02-30T12:00:00Z",
            "not a time",
        ]
    ),
)
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def _mutate(base: dict[str, Any], data: st.DataObject) -> dict[str, Any]:
    """A valid item with some fields replaced by anything, or removed."""
    item: dict[str, Any] = json.loads(json.dumps(base))
    for key in data.draw(st.lists(st.sampled_from(sorted(item)), max_size=3, unique=True)):
        choice = data.draw(st.integers(0, 2))
        if choice == 0:
            item.pop(key, None)
        elif choice == 1:
            item[key] = data.draw(json_values)
        else:
            item[key] = data.draw(times)
    if "answers" in item and isinstance(item["answers"], dict) and data.draw(st.booleans()):
        answers = item["answers"]
        key = data.draw(st.sampled_from([*answers, "unknown"]))
        answers[key] = data.draw(json_values)
    return item


def _post(world: World, me: Phone, path: str, items: list[Any]) -> None:
    body = json.dumps({"items": items}, allow_nan=True)
    response = world.client.post(
        f"/v1/me/{path}",
        content=body,
        headers={**me.headers, "Content-Type": "application/json"},
    )
    assert response.status_code in (200, 413, 422), response.text
    if response.status_code == 200:
        results = response.json()["items"]
        assert [r["index"] for r in results] == list(range(len(items)))


_FAST = settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@_FAST
@given(data=st.data())
def test_ema_payloads_never_fail_the_server(world: World, data: st.DataObject) -> None:
    world.clock.set(NOW)
    me = _phone(world)
    prompt = str(ema_prompt(world, me))
    bases = [
        morning(NOW, client_id=data.draw(st.sampled_from(["a", "b", "c"]))),
        {**evening(NOW), "prompt_id": prompt},
    ]
    items = data.draw(
        st.lists(
            st.sampled_from(bases).flatmap(lambda b: st.builds(lambda: _mutate(b, data)))
            | json_values,
            max_size=6,
        )
    )
    _post(world, me, "ema-responses", items)


@_FAST
@given(data=st.data())
def test_wearable_payloads_never_fail_the_server(world: World, data: st.DataObject) -> None:
    world.clock.set(NOW + timedelta(days=2))
    me = _phone(world)
    start = (NOW + timedelta(hours=1)).isoformat()
    kairos = {
        "metric": "steps",
        "unit": "count",
        "start": start,
        "duration_minutes": 60,
        "value": 100,
    }
    omh: dict[str, Any] = {
        "header": {
            "id": "x",
            "schema_id": {"namespace": "omh", "name": "step-count", "version": "2.0"},
        },
        "body": {
            "step_count": 10,
            "effective_time_frame": {
                "time_interval": {"start_date_time": start, "duration": {"value": 1, "unit": "h"}}
            },
        },
    }
    sleep = {
        "sleep_duration": {"value": 7, "unit": "h"},
        "effective_time_frame": {
            "time_interval": {"end_date_time": start, "duration": {"value": 8, "unit": "h"}}
        },
    }
    items = data.draw(
        st.lists(
            st.sampled_from([kairos, omh, omh["body"], sleep]).flatmap(
                lambda b: st.builds(lambda: _mutate(b, data))
            )
            | json_values,
            max_size=6,
        )
    )
    _post(world, me, "wearables", items)


@_FAST
@given(data=st.data())
def test_event_payloads_never_fail_the_server(world: World, data: st.DataObject) -> None:
    world.clock.set(NOW)
    me = _phone(world)
    base = {
        "client_id": "e",
        "kind": "exercise_completed",
        "occurred_at": NOW.isoformat(),
        "exercise_id": "acceptance-1",
        "duration_seconds": 60,
    }
    items = data.draw(st.lists(st.builds(lambda: _mutate(base, data)) | json_values, max_size=6))
    _post(world, me, "events", items)


_phones: dict[int, Phone] = {}


def _phone(world: World) -> Phone:
    """One enrolled phone per test (the world persists across a test's examples)."""
    key = id(world)
    if key not in _phones:
        _phones.clear()
        _phones[key] = phone(world, pain_study(world))
    return _phones[key]
