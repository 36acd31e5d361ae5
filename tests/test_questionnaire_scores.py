"""Questionnaire scores (``questionnaires[].scores``): computed at ingestion with reverse
coding, weights and prorating; checked at upload naming the field; stored with the
response and exported with a data-dictionary entry; and read like an item by tailoring
variables and the non-response flag."""

import csv
import io
import json
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from app.cli import cli
from app.ema.models import EmaAnswer
from app.ema.scores import score_values
from app.monitoring.flags import evaluate_all
from app.protocols.example_files import MINIMAL, example_text
from app.protocols.loading import parse_protocol
from app.protocols.problems import ProtocolInvalid
from app.protocols.questionnaires import Questionnaire
from app.simulation.behaviour import parse_behaviour
from app.simulation.report import write_outputs
from app.simulation.runner import simulate
from app.staff.models import Role
from tests.conftest import World
from tests.support.decisions import Trial
from tests.support.ingest import Phone, response_to


def _rating(item_id: str, *, optional: bool = True) -> dict[str, Any]:
    return {
        "id": item_id,
        "type": "numeric_rating",
        "text": f"{item_id}?",
        "min": 0,
        "max": 10,
        "optional": optional,
    }


PEG = {
    "id": "peg",
    "description": "PEG-3 (pain, enjoyment of life, general activity), mean of 0-10.",
    "method": "mean",
    "items": ["pain", "enjoyment", "activity"],
    "min_answered": 2,
}


def _document(**questionnaire: Any) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(example_text(MINIMAL))
    daily = document["questionnaires"][0]
    daily["items"] = [_rating("pain"), _rating("enjoyment"), _rating("activity"), _rating("mood")]
    daily["scores"] = [
        PEG,
        # Higher is better for mood: reversed so that the sub-scale runs the way pain does.
        {"id": "distress", "method": "sum", "items": ["pain", "mood"], "reverse": ["mood"]},
        {
            "id": "weighted",
            "method": "weighted_sum",
            "items": ["pain", "activity"],
            "weights": {"pain": 2, "activity": 0.5},
            "min_answered": 1,
        },
    ]
    daily.update(questionnaire)
    document["tailoring_variables"] = [
        {
            "name": "peg_today",
            "type": "number",
            "source": "ema",
            "item": "daily.peg",
            "aggregate": "latest",
            "window": "today",
            "default": -1,
        }
    ]
    document["policy"]["rules"][0]["when"] = "peg_today >= 5.0"
    document["proximal_outcomes"] = [
        {"name": "next_peg", "source": "ema", "item": "daily.peg", "window_minutes_after": 240}
    ]
    return document


QUESTIONNAIRE: Questionnaire = parse_protocol(yaml.safe_dump(_document())).questionnaires[0]


def test_scores_are_computed_with_reverse_coding_weights_and_prorating() -> None:
    full = score_values(QUESTIONNAIRE, {"pain": 6, "enjoyment": 4, "activity": 8, "mood": 7})
    assert full == {"peg": 6.0, "distress": 6 + (10 - 7), "weighted": 2 * 6 + 0.5 * 8}
    # Two of three PEG items: the mean of those answered. The weighted sum is prorated to
    # all its weight: 2 * 6 scaled by 2.5 / 2.
    partial = score_values(QUESTIONNAIRE, {"pain": 6, "enjoyment": 4})
    assert partial["peg"] == 5.0
    assert partial["weighted"] == pytest.approx(12 * 2.5 / 2)
    # Distress needs both of its items (no min_answered); PEG needs two.
    assert "distress" not in partial
    assert "peg" not in score_values(QUESTIONNAIRE, {"pain": 6})


@settings(max_examples=200, deadline=None)
@given(
    answers=st.dictionaries(
        st.sampled_from(["pain", "enjoyment", "activity", "mood"]), st.integers(0, 10)
    )
)
def test_a_score_stays_within_its_declared_range(answers: dict[str, int]) -> None:
    for score in QUESTIONNAIRE.scores:
        low, high = QUESTIONNAIRE.score_range(score)
        value = score_values(QUESTIONNAIRE, answers).get(score.id)
        if value is not None:
            assert low - 1e-9 <= value <= high + 1e-9


@pytest.mark.parametrize(
    ("score", "field", "message"),
    [
        (
            {**PEG, "items": ["pain", "joy"]},
            "questionnaires[0].scores[0].items[1]",
            "no item 'joy'",
        ),
        ({**PEG, "id": "pain"}, "questionnaires[0].scores[0].id", "already an item"),
        ({**PEG, "reverse": ["mood"]}, "questionnaires[0].scores[0].reverse[0]", "not one of"),
        ({**PEG, "min_answered": 4}, "questionnaires[0].scores[0].min_answered", "more than"),
        (
            {**PEG, "method": "weighted_sum", "weights": {"pain": 1}},
            "questionnaires[0].scores[0].weights",
            "no weight for activity, enjoyment",
        ),
        ({**PEG, "weights": {"pain": 1}}, "questionnaires[0].scores[0].weights", "weighted_sum"),
    ],
)
def test_a_bad_score_names_the_field(score: dict[str, Any], field: str, message: str) -> None:
    with pytest.raises(ProtocolInvalid) as caught:
        parse_protocol(yaml.safe_dump(_document(scores=[score])))
    problems = {p.path: p.message for p in caught.value.problems}
    assert field in problems, problems
    assert message in problems[field]


def test_a_free_text_item_cannot_be_scored() -> None:
    document = _document()
    daily = document["questionnaires"][0]
    daily["items"].append({"id": "note", "type": "free_text", "text": "?", "max_length": 50})
    daily["scores"] = [{**PEG, "items": ["pain", "note"]}]
    with pytest.raises(ProtocolInvalid) as caught:
        parse_protocol(yaml.safe_dump(document))
    assert "free_text item" in caught.value.problems[0].message


def _upload(world: World, document: dict[str, Any]) -> str:
    study = world.study()
    response = world.client.post(
        f"/v1/studies/{study['id']}/protocols",
        content=yaml.safe_dump(document),
        headers={**world.staff(Role.admin), "Content-Type": "application/yaml"},
    )
    assert response.status_code == 201, response.text
    return str(study["id"])


def _response(world: World, **answers: Any) -> dict[str, Any]:
    return response_to("daily", world.clock.now(), **answers)


def test_scores_are_stored_with_the_response_and_exported(world: World) -> None:
    study_id = _upload(world, _document())
    participant, token = world.enrolled_participant(study_id)
    me = Phone(world.client, participant, token, study_id)
    result = me.post("ema-responses", [_response(world, pain=6, enjoyment=4, activity=8, mood=7)])
    assert result["items"][0]["status"] == "accepted"
    me.post("ema-responses", [_response(world, pain=6)])  # too few items for the PEG
    with world.session_factory() as session:
        stored = session.execute(
            sa.select(EmaAnswer.item_id, EmaAnswer.numeric_value).where(
                EmaAnswer.item_id.in_(["peg", "distress", "weighted"])
            )
        ).all()
    # The second response's weighted sum: 2 * 6 prorated to all the weight, 12 * 2.5 / 2.
    assert sorted(stored) == [
        ("distress", 9.0),
        ("peg", 6.0),
        ("weighted", 15.0),
        ("weighted", 16.0),
    ]
    # A phone cannot send a score: it is not an item.
    refused = world.client.post(
        "/v1/me/ema-responses",
        json={"items": [_response(world, pain=6, peg=3)]},
        headers=me.headers,
    )
    assert refused.json()["items"][0]["status"] == "rejected"
    researcher = world.staff(Role.researcher)
    export = world.client.get(f"/v1/studies/{study_id}/exports/ema_responses", headers=researcher)
    assert export.status_code == 200, export.text
    rows = list(csv.DictReader(io.StringIO(export.text)))
    assert [r["daily.peg"] for r in rows] == ["6.0", ""]
    dictionary = world.client.get(
        f"/v1/studies/{study_id}/exports/ema_responses/dictionary", headers=researcher
    )
    assert dictionary.status_code == 200, dictionary.text
    assert "score, mean of pain, enjoyment, activity" in dictionary.text
    assert "prorated from 2 answered" in dictionary.text


def test_a_tailoring_variable_reads_a_score(world: World) -> None:
    trial = Trial(world, _document())
    participant, token = world.enrolled_participant(trial.study_id)
    me = Phone(world.client, participant, token, trial.study_id)
    me.post("ema-responses", [_response(world, pain=7, enjoyment=5, activity=6)])
    pid = uuid.UUID(participant["id"])
    decision, _ = trial.decide_one(pid, "afternoon", world.clock.now() + timedelta(minutes=30))
    assert decision.tailoring["peg_today"] == 6.0
    assert decision.rule_id == "everyone"
    # And a proximal outcome: the next PEG within 4 hours of the decision.
    world.clock.advance(timedelta(hours=2))
    me.post("ema-responses", [_response(world, pain=3, enjoyment=5, activity=4)])
    world.clock.advance(timedelta(hours=3))
    export = world.client.get(
        f"/v1/studies/{trial.study_id}/exports/decisions", headers=world.staff(Role.researcher)
    )
    assert export.status_code == 200, export.text
    [row] = [
        r for r in csv.DictReader(io.StringIO(export.text)) if r["decision_id"] == str(decision.id)
    ]
    assert float(row["outcome_next_peg"]) == pytest.approx(4.0)


def test_non_response_and_trends_on_a_score(world: World) -> None:
    document = _document()
    document["monitoring"] = {
        "trend_items": ["daily.peg"],
        "non_response": {"item": "daily.peg", "after_weeks": 2, "min_answers": 3},
    }
    study_id = _upload(world, document)
    participant, _ = world.enrolled_participant(study_id)
    start = world.clock.now()
    me_id = uuid.UUID(participant["id"])
    with world.session_factory() as session:
        responses, answers = _answers(me_id, uuid.UUID(study_id), start, days=range(0, 21))
        session.add_all(responses)
        session.flush()
        session.add_all(answers)
        session.commit()
    world.clock.set(start + timedelta(days=21, hours=1))
    with world.session_factory() as session:
        evaluate_all(session, world.clock)
        session.commit()
    flags = world.client.get(
        f"/v1/studies/{study_id}/flags",
        params={"kind": "non_response"},
        headers=world.staff(Role.researcher),
    ).json()["items"]
    assert len(flags) == 1
    assert flags[0]["detail"]["item"] == "daily.peg"
    # And the staff trends show the score's weekly means against its baseline.
    trends = world.client.get(
        f"/v1/studies/{study_id}/participants/{participant['id']}/trends",
        headers=world.staff(Role.researcher),
    )
    assert trends.status_code == 200, trends.text
    weeks = trends.json()["weeks"]
    assert weeks[0]["means"]["daily.peg"] == 6.0
    assert weeks[2]["baseline"]["daily.peg"] == 6.0


def _answers(
    participant_id: uuid.UUID, study_id: uuid.UUID, start: Any, *, days: range
) -> tuple[list[Any], list[Any]]:
    """A PEG of 6 every day, the way ingestion stores it (no improvement)."""
    from app.ema.models import EmaResponse

    rows: list[Any] = []
    answers: list[Any] = []
    for day in days:
        at = start + timedelta(days=day, hours=2)
        response = EmaResponse(
            id=uuid.uuid4(),
            participant_id=participant_id,
            study_id=study_id,
            client_id=uuid.uuid4().hex,
            questionnaire_id="daily",
            questionnaire_version=1,
            protocol_version=1,
            answered_at=at,
            utc_offset_minutes=0,
            received_at=at,
        )
        rows.append(response)
        answers.append(
            EmaAnswer(
                response_id=response.id,
                participant_id=participant_id,
                questionnaire_id="daily",
                item_id="peg",
                answered_at=at,
                value=6.0,
                numeric_value=6.0,
            )
        )
    return rows, answers


PEG_PROTOCOL = """
kairos_protocol: 1
study: {name: PEG end to end, duration_days: 28, default_timezone: Europe/Berlin, random_seed: 4}
questionnaires:
  - include: peg3
ema_schedules:
  - {id: morning, questionnaire: peg, times: ["08:00"], expires_after_minutes: 90}
  - {id: afternoon, questionnaire: peg, times: ["14:00"], expires_after_minutes: 90}
decision_points:
  - {id: late_morning, times: ["11:00"]}
intervention_options:
  - {id: movement, category: movement, title: A short walk, body: A few minutes of movement.}
  - {id: nothing, category: none}
tailoring_variables:
  - {name: peg_today, type: number, source: ema, item: "peg.peg_score", aggregate: latest,
     window: today, default: -1}
proximal_outcomes:
  - {name: next_peg, source: ema, item: "peg.peg_score", window_minutes_after: 240}
policy:
  rules:
    - {id: everyone, when: "peg_today >= 0.0", randomize: {movement: 0.5, nothing: 0.5}}
  fallback: {option: nothing}
"""


def test_the_peg3_instrument_runs_end_to_end(tmp_path: Path) -> None:
    """The library's PEG-3, a score-based tailoring variable and a score-based proximal
    outcome: ingested (simulated phones through the real pipeline), decided, exported and
    analysed; the declared effect (2 points off pain and activity: 4/3 off the PEG mean)
    is recovered."""
    behaviour = parse_behaviour(
        "answering: {probability: 0.95, weekly_change: 0}\n"
        "effects:\n"
        "  - {option: movement, item: pain, shift: -2, hours: 4}\n"
        "  - {option: movement, item: activity, shift: -2, hours: 4}\n"
    )
    sim = simulate(PEG_PROTOCOL, participants=20, days=14, seed=3, behaviour=behaviour)
    try:
        write_outputs(sim, tmp_path)
    finally:
        sim.close()
    rows = list(csv.DictReader(io.StringIO((tmp_path / "decisions.csv").read_text())))
    # The rule randomizes once the day's PEG score is in (the variable's default is -1).
    randomized = [r for r in rows if r["randomized"] == "true"]
    assert len(randomized) > 150
    assert all(0 <= float(r["tv_peg_today"]) <= 10 for r in randomized)
    result = CliRunner().invoke(
        cli,
        ["analyze", "mrt", str(tmp_path / "decisions.csv"), "--outcome", "outcome_next_peg",
         "--json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    (effect,) = json.loads(result.output)["coefficients"]
    assert effect["ci_low"] <= -4 / 3 <= effect["ci_high"], effect
    assert effect["ci_high"] < 0


def test_single_choice_items_are_recoded_into_numbers() -> None:
    document = _document()
    daily = document["questionnaires"][0]
    choices = [{"value": v, "label": v} for v in ("none", "some", "a_lot")]
    daily["items"].append(
        {"id": "bother", "type": "single_choice", "text": "?", "choices": choices}
    )
    recode = {"bother": {"none": 0, "some": 1, "a_lot": 3}}
    daily["scores"] = [PEG, {"id": "burden", "items": ["pain", "bother"], "recode": recode}]
    questionnaire = parse_protocol(yaml.safe_dump(document)).questionnaires[0]
    assert score_values(questionnaire, {"pain": 4, "bother": "a_lot"}) == {"burden": 7.0}
    assert questionnaire.score_range(questionnaire.scores[1]) == (0.0, 13.0)
    for bad, field, message in (
        ({"bother": {"none": 0, "some": 1}}, "recode.bother", "no number for the choice(s) a_lot"),
        ({"bother": {**recode["bother"], "lots": 2}}, "recode.bother.lots", "not a choice"),
        ({"pain": {"x": 1}}, "recode.pain", "single-choice items"),
    ):
        daily["scores"] = [PEG, {"id": "burden", "items": ["pain", "bother"], "recode": bad}]
        with pytest.raises(ProtocolInvalid) as caught:
            parse_protocol(yaml.safe_dump(document))
        problems = {p.path: p.message for p in caught.value.problems}
        path = f"questionnaires[0].scores[1].{field}"
        assert path in problems, problems
        assert message in problems[path]
