"""EMA responses: validation against the protocol, idempotent batches, prompts, time bounds."""

import uuid
from datetime import timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from app.api.main import create_app
from app.core.config import Settings
from app.ema.models import EmaAnswer, EmaResponse
from app.protocols.example_files import CHRONIC_PAIN_JITAI, example_text
from app.protocols.timing import Event
from app.scheduling.models import ScheduledItem
from app.staff.models import Role
from tests.conftest import World, bearer
from tests.support.ingest import Phone, ema_prompt, evening, morning, pain_study, phone, recording


@pytest.fixture
def me(world: World) -> Phone:
    return phone(world, pain_study(world))


def _count(world: World, model: Any) -> int:
    with world.session_factory() as session:
        return int(session.scalar(sa.select(sa.func.count()).select_from(model)) or 0)


def test_a_batch_is_stored_and_read_back(world: World, me: Phone) -> None:
    now = world.clock.now()
    items = [morning(now - timedelta(hours=h), pain=h) for h in (0, 0.1)]
    items[1]["answers"]["pain"] = 7
    result = me.post("ema-responses", items)
    assert (result["accepted"], result["duplicate"], result["rejected"]) == (2, 0, 0)
    assert [r["status"] for r in result["items"]] == ["accepted", "accepted"]
    assert all(r["late"] is False and "errors" not in r for r in result["items"])

    page = world.client.get("/v1/me/ema-responses", headers=me.headers).json()
    assert [r["id"] for r in page["items"]] == [r["id"] for r in result["items"]]
    first = page["items"][0]
    assert first["answers"]["mood"] == "neutral"
    assert first["protocol_version"] == 1
    assert first["utc_offset_minutes"] == 0
    with world.session_factory() as session:
        numbers = dict(
            session.execute(
                sa.select(EmaAnswer.item_id, EmaAnswer.numeric_value).where(
                    EmaAnswer.response_id == uuid.UUID(first["id"])
                )
            ).all()
        )
    assert numbers == {
        "pain": 0.0,
        "interference": 4.0,
        "acceptance": 6.0,
        "mood": None,
        "sleep_quality": 7.0,
        "sleep_duration": 420.0,
    }


def test_the_device_offset_is_kept(world: World, me: Phone) -> None:
    local = (world.clock.now() - timedelta(minutes=5)).astimezone(ZoneInfo("Europe/Berlin"))
    me.post("ema-responses", [morning(local)])
    stored = world.client.get("/v1/me/ema-responses", headers=me.headers).json()["items"][0]
    assert stored["utc_offset_minutes"] == 60
    assert stored["answered_at"].startswith(
        (world.clock.now() - timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M")
    )


def test_replaying_a_batch_changes_nothing(world: World, me: Phone) -> None:
    items = [morning(world.clock.now() - timedelta(minutes=i)) for i in range(5)]
    first = me.post("ema-responses", items)
    for _ in range(3):
        again = me.post("ema-responses", items)
        assert again["duplicate"] == 5
        assert again["accepted"] == 0
        assert [r["id"] for r in again["items"]] == [r["id"] for r in first["items"]]
    assert _count(world, EmaResponse) == 5
    assert _count(world, EmaAnswer) == 5 * 6


def test_one_bad_item_does_not_cost_the_others(world: World, me: Phone) -> None:
    now = world.clock.now()
    good, also_good = morning(now), morning(now - timedelta(minutes=1))
    bad = morning(now, pain=11)
    result = me.post("ema-responses", [good, bad, also_good])
    assert [r["status"] for r in result["items"]] == ["accepted", "rejected", "accepted"]
    assert result["items"][1]["client_id"] == bad["client_id"]
    assert result["items"][1]["errors"] == [
        {"field": "body.items[1].answers.pain", "message": "11 is outside 0..10"}
    ]
    assert _count(world, EmaResponse) == 2
    # Fixed and sent again with the same client id, the rejected one is accepted.
    bad["answers"]["pain"] = 10
    retry = me.post("ema-responses", [good, bad, also_good])
    assert [r["status"] for r in retry["items"]] == ["duplicate", "accepted", "duplicate"]


def test_text_with_a_nul_character_is_rejected_by_field(world: World, me: Phone) -> None:
    # PostgreSQL stores no NUL in text or JSON: such an item must be refused by field, on
    # both databases, and not fail the batch in the database (a 500 on PostgreSQL).
    now = world.clock.now()
    in_client_id = morning(now, client_id="abc\x00def")
    in_free_text = evening(now, note="fine\x00")
    in_item_id = morning(now)
    in_item_id["answers"]["pa\x00in"] = 3
    in_questionnaire = {**morning(now), "questionnaire_id": "mor\x00ning"}
    result = me.post(
        "ema-responses",
        [in_client_id, in_free_text, in_item_id, in_questionnaire, evening(now, note="fine")],
    )
    assert [r["status"] for r in result["items"]] == ["rejected"] * 4 + ["accepted"]
    message = "text must not contain the NUL character (U+0000)"
    assert result["items"][0]["errors"] == [
        {"field": "body.items[0].client_id", "message": f"Value error, {message}"}
    ]
    # Refused by the answer's type (app/core/text.py), like the client id.
    assert result["items"][1]["errors"] == [
        {"field": "body.items[1].answers.note", "message": f"Value error, {message}"}
    ]
    assert [e["field"] for e in result["items"][2]["errors"]] == [
        "body.items[2].answers.pa\x00in.[key]"
    ]
    assert [e["field"] for e in result["items"][3]["errors"]] == ["body.items[3].questionnaire_id"]
    assert _count(world, EmaResponse) == 1


def test_the_same_client_id_twice_in_one_batch(world: World, me: Phone) -> None:
    item = morning(world.clock.now())
    result = me.post("ema-responses", [item, item])
    assert [r["status"] for r in result["items"]] == ["accepted", "duplicate"]
    assert result["items"][0]["id"] == result["items"][1]["id"]


def test_schema_errors_are_per_item(world: World, me: Phone) -> None:
    now = world.clock.now()
    no_offset = morning(now)
    no_offset["answered_at"] = "2026-03-01T11:00:00"
    no_client_id = morning(now)
    del no_client_id["client_id"]
    extra = {**morning(now), "colour": "blue"}
    result = me.post(
        "ema-responses", [no_offset, no_client_id, extra, "not an object", morning(now)]
    )
    statuses = [r["status"] for r in result["items"]]
    assert statuses == ["rejected", "rejected", "rejected", "rejected", "accepted"]
    fields = [[e["field"] for e in r.get("errors", [])] for r in result["items"]]
    assert fields[0] == ["body.items[0].answered_at"]
    assert fields[1] == ["body.items[1].client_id"]
    assert fields[2] == ["body.items[2].colour"]
    assert fields[3] == ["body.items[3]"]
    assert result["items"][0]["client_id"] == no_offset["client_id"]


@pytest.mark.parametrize(
    ("questionnaire", "item", "value", "message"),
    [
        # numeric_rating 0..10 step 1
        ("morning", "pain", 0, None),
        ("morning", "pain", 10, None),
        ("morning", "pain", 10.0, None),
        ("morning", "pain", -1, "-1 is outside 0..10"),
        ("morning", "pain", 10.5, "10.5 is outside 0..10"),
        ("morning", "pain", 4.5, "4.5 is not on the scale (steps of 1 from 0)"),
        ("morning", "pain", True, "expected a number from 0 to 10"),
        ("morning", "pain", "5", "expected a number from 0 to 10"),
        ("morning", "pain", 2**60, "too large a number"),
        ("morning", "pain", None, "an answer is required"),
        # single_choice
        ("morning", "mood", "very_good", None),
        ("morning", "mood", "ecstatic", "expected one of"),
        ("morning", "mood", ["good"], "expected one of"),
        # duration 0..960 whole minutes
        ("morning", "sleep_duration", 0, None),
        ("morning", "sleep_duration", 960, None),
        ("morning", "sleep_duration", 961, "961 minutes is outside 0..960"),
        ("morning", "sleep_duration", 420.5, "expected a whole number of minutes"),
        # multiple_choice (optional)
        ("evening", "coping", [], None),
        ("evening", "coping", ["pacing", "breathing"], None),
        ("evening", "coping", None, None),
        ("evening", "coping", ["pacing", "pacing"], "selected more than once"),
        ("evening", "coping", ["flying"], "unknown choices ['flying']"),
        ("evening", "coping", "pacing", "expected a list of choices"),
        # yes_no
        ("evening", "self_harm", False, None),
        ("evening", "self_harm", 0, "expected true or false"),
        # free_text, max 280 (optional)
        ("evening", "note", "x" * 280, None),
        ("evening", "note", "", None),
        ("evening", "note", "x" * 281, "text is 281 characters long; at most 280 allowed"),
        ("evening", "note", 42, "expected text"),
    ],
)
def test_every_item_type_at_its_edges(
    world: World, me: Phone, questionnaire: str, item: str, value: Any, message: str | None
) -> None:
    build = morning if questionnaire == "morning" else evening
    body = build(world.clock.now())
    body["answers"][item] = value
    result = me.post("ema-responses", [body])["items"][0]
    if message is None:
        assert result["status"] == "accepted", result
    else:
        assert result["status"] == "rejected"
        assert result["errors"][0]["field"] == f"body.items[0].answers.{item}"
        assert message in result["errors"][0]["message"]


def test_missing_required_and_unknown_items(world: World, me: Phone) -> None:
    body = morning(world.clock.now())
    del body["answers"]["interference"]
    body["answers"]["nausea"] = 3
    result = me.post("ema-responses", [body])["items"][0]
    assert result["status"] == "rejected"
    errors = {e["field"]: e["message"] for e in result["errors"]}
    assert errors["body.items[0].answers.interference"] == "an answer is required"
    assert "has no item 'nausea'" in errors["body.items[0].answers.nausea"]


def test_unknown_questionnaire_and_version(world: World, me: Phone) -> None:
    now = world.clock.now()
    unknown = {**morning(now), "questionnaire_id": "weekly"}
    wrong_version = {**morning(now), "questionnaire_version": 2}
    result = me.post("ema-responses", [unknown, wrong_version])["items"]
    assert result[0]["errors"][0]["field"] == "body.items[0].questionnaire_id"
    assert "no questionnaire 'weekly'" in result[0]["errors"][0]["message"]
    assert result[1]["errors"][0]["field"] == "body.items[1].questionnaire_version"
    assert "has no version 2" in result[1]["errors"][0]["message"]


def test_answers_to_an_older_protocol_version_are_kept(world: World, me: Phone) -> None:
    """A phone offline during a protocol amendment still sends the old questionnaire."""
    admin = world.staff(Role.admin)
    amended = example_text(CHRONIC_PAIN_JITAI).replace(
        "  - id: morning\n    version: 1", "  - id: morning\n    version: 2"
    )
    uploaded = world.client.post(
        f"/v1/studies/{me.study_id}/protocols?activate=true",
        content=amended,
        headers={**admin, "Content-Type": "application/yaml"},
    )
    assert uploaded.status_code == 201, uploaded.text
    moved = world.client.post(
        f"/v1/studies/{me.study_id}/protocols/2/activate",
        json={"apply_to": "all_participants"},
        headers=admin,
    )
    assert moved.status_code == 200, moved.text
    now = world.clock.now()
    old = morning(now)
    new = {**morning(now), "questionnaire_version": 2}
    result = me.post("ema-responses", [old, new])["items"]
    assert [r["status"] for r in result] == ["accepted", "accepted"]
    stored = world.client.get("/v1/me/ema-responses", headers=me.headers).json()["items"]
    assert [(r["questionnaire_version"], r["protocol_version"]) for r in stored] == [(1, 1), (2, 2)]


def test_a_study_without_protocol_has_nothing_to_answer(world: World) -> None:
    study = world.study()
    _, token = world.enrolled_participant(study["id"])
    response = world.client.post(
        "/v1/me/ema-responses",
        json={"items": [morning(world.clock.now())]},
        headers=bearer(token),
    )
    item = response.json()["items"][0]
    assert item["status"] == "rejected"
    assert "no protocol version" in item["errors"][0]["message"]


def test_timestamps_in_the_future_or_before_enrollment(world: World, me: Phone) -> None:
    now = world.clock.now()
    items = [
        morning(now + timedelta(minutes=9)),  # within the clock-skew allowance
        morning(now + timedelta(minutes=11)),
        morning(now - timedelta(minutes=9)),  # enrolled at `now`: within the allowance
        morning(now - timedelta(days=2)),
    ]
    result = me.post("ema-responses", items)["items"]
    assert [r["status"] for r in result] == ["accepted", "rejected", "accepted", "rejected"]
    assert "in the future" in result[1]["errors"][0]["message"]
    assert result[1]["errors"][0]["field"] == "body.items[1].answered_at"
    assert "before the participant enrolled" in result[3]["errors"][0]["message"]


def test_answering_a_prompt_marks_it_and_late_answers_are_kept(world: World, me: Phone) -> None:
    on_time = ema_prompt(world, me)
    expired = ema_prompt(world, me, expires_after=timedelta(minutes=30))
    world.clock.advance(timedelta(hours=1))
    now = world.clock.now()
    result = me.post(
        "ema-responses",
        [
            {**morning(now - timedelta(minutes=40)), "prompt_id": str(on_time)},
            {**morning(now), "prompt_id": str(expired)},
        ],
    )["items"]
    assert [(r["status"], r["late"]) for r in result] == [("accepted", False), ("accepted", True)]
    with world.session_factory() as session:
        prompt = session.get_one(ScheduledItem, on_time)
        assert prompt.answered_at == now - timedelta(minutes=40)
    # The same prompt answered again under a new client id is refused, not doubled.
    again = me.post("ema-responses", [{**morning(now), "prompt_id": str(on_time)}])["items"][0]
    assert again["status"] == "rejected"
    assert "already answered" in again["errors"][0]["message"]


def test_prompts_must_be_the_participants_own_and_match(world: World, me: Phone) -> None:
    other = phone(world, me.study_id)
    theirs = ema_prompt(world, other)
    evening_prompt = ema_prompt(world, me, questionnaire="evening")
    now = world.clock.now()
    result = me.post(
        "ema-responses",
        [
            {**morning(now), "prompt_id": str(theirs)},
            {**morning(now), "prompt_id": str(uuid.uuid4())},
            {**morning(now), "prompt_id": str(evening_prompt)},
        ],
    )["items"]
    assert [r["status"] for r in result] == ["rejected"] * 3
    assert "has no EMA prompt" in result[0]["errors"][0]["message"]
    assert "has no EMA prompt" in result[1]["errors"][0]["message"]
    assert "asked for questionnaire 'evening'" in result[2]["errors"][0]["message"]
    with world.session_factory() as session:
        assert session.get_one(ScheduledItem, theirs).answered_at is None


def test_participants_see_only_their_own_responses(world: World, me: Phone) -> None:
    other = phone(world, me.study_id)
    me.post("ema-responses", [morning(world.clock.now())])
    assert world.client.get("/v1/me/ema-responses", headers=other.headers).json()["items"] == []
    # The same client id from another participant is their own, separate response.
    shared = morning(world.clock.now(), client_id="same-id")
    assert me.post("ema-responses", [shared])["items"][0]["status"] == "accepted"
    assert other.post("ema-responses", [shared])["items"][0]["status"] == "accepted"


def test_staff_list_a_participants_responses_with_filters(world: World, me: Phone) -> None:
    now = world.clock.now()
    world.clock.advance(timedelta(days=1))
    items = [morning(now + timedelta(hours=h)) for h in range(5)] + [evening(now)]
    me.post("ema-responses", items)
    path = f"/v1/studies/{me.study_id}/participants/{me.id}/ema-responses"
    headers = world.staff(Role.researcher)
    first = world.client.get(
        path, params={"limit": 2, "questionnaire_id": "morning"}, headers=headers
    )
    assert first.status_code == 200, first.text
    body = first.json()
    assert len(body["items"]) == 2
    assert body["next_cursor"]
    rest = world.client.get(
        path,
        params={"cursor": body["next_cursor"], "questionnaire_id": "morning"},
        headers=headers,
    ).json()
    assert len(rest["items"]) == 3
    assert rest["next_cursor"] is None
    since = (now + timedelta(hours=3)).isoformat()
    recent = world.client.get(path, params={"since": since}, headers=headers).json()
    assert len(recent["items"]) == 2
    naive = world.client.get(path, params={"since": "2026-03-01T10:00:00"}, headers=headers)
    assert naive.status_code == 422
    elsewhere = world.study()
    wrong_study = world.client.get(
        f"/v1/studies/{elsewhere['id']}/participants/{me.id}/ema-responses", headers=headers
    )
    assert wrong_study.status_code == 404


def test_accepted_responses_publish_ema_submitted(world: World, me: Phone) -> None:
    now = world.clock.now()
    items = [morning(now), evening(now), {**morning(now), "questionnaire_version": 9}]
    with recording(Event.ema_submitted) as recorder:
        result = me.post("ema-responses", items)["items"]
        me.post("ema-responses", items)  # duplicates publish nothing
    assert [(e.kind, e.questionnaire) for e in recorder.events] == [
        (Event.ema_submitted, "morning"),
        (Event.ema_submitted, "evening"),
    ]
    assert [str(e.reference_id) for e in recorder.events] == [r["id"] for r in result[:2]]
    assert recorder.events[0].participant_id == uuid.UUID(me.id)
    assert recorder.events[0].occurred_at == now


def test_ema_submitted_names_the_prompt_answered(world: World, me: Phone) -> None:
    prompt = ema_prompt(world, me)
    now = world.clock.now()
    with recording(Event.ema_submitted) as recorder:
        me.post("ema-responses", [{**morning(now), "prompt_id": str(prompt)}, morning(now)])
    assert [e.prompt_id for e in recorder.events] == [prompt, None]


def test_a_malformed_envelope_is_a_422(world: World, me: Phone) -> None:
    bodies: list[Any] = [[morning(world.clock.now())], {"responses": []}, {"items": {}}]
    for body in bodies:
        response = world.client.post("/v1/me/ema-responses", json=body, headers=me.headers)
        assert response.status_code == 422, body
        assert response.headers["content-type"] == "application/problem+json"
    garbled = world.client.post(
        "/v1/me/ema-responses",
        content=b'{"items": [',
        headers={**me.headers, "Content-Type": "application/json"},
    )
    assert garbled.status_code == 422


def test_too_many_items_or_bytes_is_a_413_naming_the_limit(
    world: World, settings: Settings, engine: Any
) -> None:
    from fastapi.testclient import TestClient

    small = settings.model_copy(update={"max_batch_items": 3, "max_request_bytes": 32768})
    app = create_app(small, world.clock)
    with TestClient(app, raise_server_exceptions=False) as client:
        small_world = World(client, world.session_factory, world.clock, world.engine)
        me = phone(small_world, pain_study(small_world))
        now = world.clock.now()
        four = client.post(
            "/v1/me/ema-responses",
            json={"items": [morning(now) for _ in range(4)]},
            headers=me.headers,
        )
        assert four.status_code == 413
        assert four.json()["limit"] == 3
        assert four.json()["code"] == "batch_too_large"
        big = {"items": [morning(now, note="x") for _ in range(3)], "padding": "x" * 40000}
        declared = client.post("/v1/me/ema-responses", json=big, headers=me.headers)
        assert declared.status_code == 413
        assert declared.json()["limit"] == 32768
        assert declared.headers["content-type"] == "application/problem+json"

        def chunks() -> Any:
            yield b'{"items": ['
            for _ in range(40):
                yield b'"' + b"x" * 1000 + b'",'
            yield b'"x"]}'

        streamed = client.post(
            "/v1/me/ema-responses",
            content=chunks(),
            headers={**me.headers, "Content-Type": "application/json"},
        )
        assert streamed.status_code == 413
        assert streamed.json()["limit"] == 32768
        assert _count(world, EmaResponse) == 0


def test_every_column_of_responses_and_answers_is_stored_as_sent(world: World, me: Phone) -> None:
    """Whatever statement stores them (PostgreSQL writes both tables at once): each answer's
    value as sent (numbers, lists, booleans, text with quotes and non-ASCII characters)."""
    local = (world.clock.now() - timedelta(minutes=5)).astimezone(ZoneInfo("America/Denver"))
    note = 'a "quoted" \\ note: é 😀 \u2028 end'
    item = evening(local, coping=["pacing", "movement"], note=note, acceptance=6.0)
    prompt = ema_prompt(world, me, questionnaire="evening")
    item["prompt_id"] = str(prompt)
    result = me.post("ema-responses", [item])
    assert result["accepted"] == 1
    response_id = uuid.UUID(result["items"][0]["id"])
    with world.session_factory() as session:
        response = session.get_one(EmaResponse, response_id)
        assert (response.client_id, response.prompt_id) == (item["client_id"], prompt)
        assert (response.questionnaire_id, response.questionnaire_version) == ("evening", 1)
        assert (response.protocol_version, response.late) == (1, False)
        assert response.answered_at == local
        assert response.utc_offset_minutes == local.utcoffset().total_seconds() // 60  # type: ignore[union-attr]
        assert response.received_at == world.clock.now()
        answers = {
            a.item_id: a
            for a in session.scalars(
                sa.select(EmaAnswer).where(EmaAnswer.response_id == response_id)
            )
        }
    assert {k: a.value for k, a in answers.items()} == {
        "pain": 5,
        "interference": 4,
        "acceptance": 6,
        "mood": "low",
        "coping": ["pacing", "movement"],
        "self_harm": False,
        "note": note,
    }
    assert {k: a.numeric_value for k, a in answers.items()} == {
        "pain": 5.0,
        "interference": 4.0,
        "acceptance": 6.0,
        "mood": None,
        "coping": None,
        "self_harm": 0.0,
        "note": None,
    }
    assert all(a.answered_at == local for a in answers.values())
    assert all(a.questionnaire_id == "evening" for a in answers.values())
    assert all(a.participant_id == response.participant_id for a in answers.values())
    assert type(answers["acceptance"].value) is int  # 6.0 on a whole-number scale is 6


def test_a_time_with_an_offset_beyond_postgresql_range_is_stored(world: World, me: Phone) -> None:
    """Python allows UTC offsets up to ±23:59, PostgreSQL's timestamptz input only ±15:59:
    times are stored as the UTC instant, with the offset kept apart."""
    zone = timezone(timedelta(hours=23, minutes=59))
    local = (world.clock.now() - timedelta(minutes=5)).astimezone(zone)
    result = me.post("ema-responses", [morning(local)])
    assert result["accepted"] == 1, result
    with world.session_factory() as session:
        response = session.get_one(EmaResponse, uuid.UUID(result["items"][0]["id"]))
        assert response.answered_at == local
        assert response.utc_offset_minutes == 23 * 60 + 59
        answered = session.scalars(
            sa.select(EmaAnswer.answered_at).where(EmaAnswer.response_id == response.id)
        ).all()
    assert len(answered) == 6
    assert all(a == local for a in answered)
