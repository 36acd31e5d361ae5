"""The shipped example protocols parse, round-trip, and serve the engine's look-ups."""

import json
from pathlib import Path

import pytest

from app.protocols import Protocol, parse_protocol
from app.protocols.document import NumericRatingItem, Weekday
from app.protocols.schema import protocol_json_schema

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "protocols"
NAMES = ["minimal.yaml", "chronic_pain_jitai.yaml", "chronic_pain_adaptive.yaml"]


def load(name: str) -> Protocol:
    return parse_protocol((EXAMPLES / name).read_text(encoding="utf-8"))


@pytest.mark.parametrize("name", NAMES)
def test_round_trip_python_and_json(name: str) -> None:
    protocol = load(name)
    assert parse_protocol(protocol.model_dump()) == protocol
    as_json = json.dumps(protocol.model_dump(mode="json"))
    assert parse_protocol(as_json, content_type="application/json") == protocol
    assert parse_protocol(json.loads(as_json)) == protocol


@pytest.mark.parametrize("name", NAMES)
def test_bytes_input(name: str) -> None:
    assert parse_protocol((EXAMPLES / name).read_bytes()) == load(name)


def test_json_schema_mentions_top_level_keys() -> None:
    schema = protocol_json_schema()
    assert schema["$schema"].startswith("https://json-schema.org/")
    assert schema["$id"]
    assert schema["title"] == "Kairos study protocol"
    assert schema["additionalProperties"] is False
    assert set(schema["required"]) >= {"kairos_protocol", "study", "policy"}
    for key in (
        "study",
        "participant_attributes",
        "questionnaires",
        "ema_schedules",
        "decision_points",
        "tailoring_variables",
        "intervention_options",
        "policy",
        "smart",
        "personalization",
        "proximal_outcomes",
        "monitoring",
        "adaptation",
        "phases",
        "reviews",
    ):
        assert key in schema["properties"], key
        assert schema["properties"][key].get("description"), key
    json.dumps(schema)  # serializable as is


def test_lookups_of_the_full_example() -> None:
    protocol = load("chronic_pain_jitai.yaml")
    assert protocol.option("mindfulness").contraindicated_when == "attributes.trauma_history"
    assert protocol.option("nothing").delivers_nothing
    assert protocol.questionnaire("evening").item("self_harm").type == "yes_no"
    assert [q.id for q, _ in protocol.items("*.pain")] == ["morning", "checkin", "evening"]
    pain = protocol.item("morning.pain")
    assert isinstance(pain, NumericRatingItem)
    assert pain.is_integer_scale
    assert protocol.variable("steps_3h").default == -1
    assert protocol.decision_point("evening").grace_minutes == 10
    assert protocol.ema_schedule("afternoon").random_windows[0].count == 1
    assert protocol.policy.rule("otherwise").probabilities() == {"nothing": 1.0}
    assert protocol.stage("stage_2").duration_days is None
    with pytest.raises(KeyError):
        protocol.option("nope")


def test_stage_on_day() -> None:
    protocol = load("chronic_pain_jitai.yaml")
    stage = protocol.stage_on_day
    assert [stage(d).id for d in (0, 27, 28, 83)] == [  # type: ignore[union-attr]
        "stage_1",
        "stage_1",
        "stage_2",
        "stage_2",
    ]
    assert load("minimal.yaml").stage_on_day(3) is None


def test_timing_helpers() -> None:
    protocol = load("chronic_pain_jitai.yaml")
    quiet = protocol.policy.availability.quiet_hours
    assert quiet is not None
    assert quiet.contains(23 * 60)
    assert quiet.contains(7 * 60)
    assert not quiet.contains(8 * 60)
    schedule = protocol.ema_schedule("morning")
    assert schedule.is_active_on(0, Weekday.mon, protocol.study.last_day)
    assert not schedule.is_active_on(84, Weekday.mon, protocol.study.last_day)


def test_option_render_fills_placeholders() -> None:
    option = load("chronic_pain_jitai.yaml").option("pain_acceptance")
    title, body = option.render({"interference_today": 7.4})
    assert title == "Making room for pain"
    assert "(7/10)" in body


def test_pai_recommends_the_best_predicted_treatment() -> None:
    pai = load("chronic_pain_jitai.yaml").personalization.pai
    assert pai is not None
    base = {"baseline_interference": 6, "age": 50, "trauma_history": False}
    # nociplastic lowers the predicted interference under pain acceptance
    assert pai.recommend({**base, "pain_phenotype": "nociplastic"}) == "pain_acceptance"
    assert pai.recommend({**base, "pain_phenotype": "nociceptive"}) == "cbt_skill"


def test_answer_validation() -> None:
    protocol = load("chronic_pain_jitai.yaml")
    pain = protocol.item("morning.pain")
    assert pain.validate_answer(7) is None
    assert pain.validate_answer(11) == "11 is outside 0..10"
    assert pain.validate_answer(None) == "an answer is required"
    assert pain.validate_answer(True) is not None
    coping = protocol.item("evening.coping")
    assert coping.validate_answer(None) is None
    assert coping.validate_answer(["pacing", "breathing"]) is None
    assert coping.validate_answer(["pacing", "pacing"]) == "a choice is selected more than once"
    assert "unknown choices" in (coping.validate_answer(["yoga"]) or "")
    assert protocol.item("morning.mood").validate_answer("low") is None
    assert protocol.item("morning.mood").validate_answer("meh") is not None
    assert protocol.item("evening.self_harm").validate_answer(False) is None
    assert protocol.item("evening.self_harm").validate_answer("no") is not None
    assert protocol.item("evening.note").validate_answer("x" * 281) is not None
    assert protocol.item("morning.sleep_duration").validate_answer(480) is None
    assert protocol.item("morning.sleep_duration").validate_answer(961) is not None


def test_attribute_validation() -> None:
    attributes = load("chronic_pain_jitai.yaml").participant_attributes
    assert attributes["age"].validate_value(40) is None
    assert attributes["age"].validate_value(12) == "12 is below the minimum 18"
    assert attributes["age"].validate_value(None) == "a value is required"
    assert attributes["preferred_categories"].validate_value(None) is None
    assert attributes["preferred_categories"].validate_value(["mindfulness"]) is None
    assert attributes["pain_phenotype"].validate_value("mixed") is not None
    assert attributes["trauma_history"].validate_value(1) is not None
