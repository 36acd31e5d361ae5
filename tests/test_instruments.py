"""The instrument library (app/protocols/instruments): each fragment loads, validates and
scores as its instrument specifies; a protocol includes one by name, with overrides; and the
STarT Back risk stratum becomes a participant attribute when a response is accepted."""

import tomllib
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml

from app.audit.models import AuditEvent
from app.decision_rules.models import PaiScore
from app.ema.scores import score_values
from app.participants.models import Participant
from app.protocols.example_files import CHRONIC_PAIN_JITAI, MINIMAL, example_text
from app.protocols.instruments import instrument, instrument_names
from app.protocols.loading import parse_protocol
from app.protocols.problems import ProtocolInvalid
from app.protocols.questionnaires import Questionnaire
from app.protocols.schema import protocol_json_schema
from app.staff.models import Role
from tests.conftest import World
from tests.support.ingest import Phone, phone, response_to

START_BACK_RISK = {
    "type": "choice",
    "choices": ["low", "medium", "high"],
    "description": "STarT Back risk stratum, set from the onboarding screening",
}


def _document(*includes: dict[str, Any], **fields: Any) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(example_text(MINIMAL))
    document["questionnaires"] += list(includes)
    document.update(fields)
    return document


def _questionnaire(name: str) -> Questionnaire:
    return Questionnaire.model_validate(instrument(name))


def _problems(document: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(ProtocolInvalid) as caught:
        parse_protocol(document)
    return {p.path: p.message for p in caught.value.problems}


def test_the_library_has_the_five_instruments() -> None:
    assert set(instrument_names()) >= {"peg3", "promis_pi_4a", "start_back", "pcs4", "cpaq8"}


@pytest.mark.parametrize("name", instrument_names())
def test_each_instrument_validates_in_a_protocol(name: str) -> None:
    protocol = parse_protocol(
        _document({"include": name}, participant_attributes={"start_back_risk": START_BACK_RISK})
    )
    included = protocol.questionnaires[-1]
    assert included.citation
    assert included.terms
    assert included.scores
    if name != "peg3":
        # Licensed text is never shipped: every item is an obvious placeholder.
        assert all(item.text.startswith("[licensed item text: ") for item in included.items)
        assert "placeholder" in included.terms


def test_peg3_ships_its_text_and_scores_the_mean() -> None:
    peg = _questionnaire("peg3")
    assert peg.item("pain").text.startswith("What number best describes your pain")
    assert score_values(peg, {"pain": 6, "enjoyment": 4, "activity": 8}) == {"peg_score": 6.0}
    assert score_values(peg, {"pain": 6, "enjoyment": 4}) == {}


def test_promis_pain_interference_raw_score() -> None:
    promis = _questionnaire("promis_pi_4a")
    answers = {"painin9": 1, "painin22": 3, "painin31": 5, "painin34": 2}
    assert score_values(promis, answers) == {"raw_score": 11.0}
    assert promis.score_range(promis.scores[0]) == (4.0, 20.0)


def test_pcs4_sum() -> None:
    pcs = _questionnaire("pcs4")
    assert score_values(pcs, {"pcs4_1": 0, "pcs4_2": 4, "pcs4_3": 2, "pcs4_4": 3}) == {
        "pcs4_score": 9.0
    }


def test_cpaq8_reverses_pain_willingness() -> None:
    cpaq = _questionnaire("cpaq8")
    answers = {"ae1": 6, "ae2": 5, "ae3": 4, "ae4": 3, "pw1": 6, "pw2": 0, "pw3": 1, "pw4": 2}
    # Pain willingness: (6-6) + (6-0) + (6-1) + (6-2) = 15.
    assert score_values(cpaq, answers) == {
        "activity_engagement": 18.0,
        "pain_willingness": 15.0,
        "cpaq8_total": 33.0,
    }


def _start_back(positive: set[int]) -> dict[str, int | str]:
    """Items 1-8 agree (1) or disagree (0); item 9, bothersomeness, is one of five options,
    "very much" counting as positive and "moderately" not."""
    answers: dict[str, int | str] = {f"item{i}": int(i in positive) for i in range(1, 9)}
    answers["item9"] = "very_much" if 9 in positive else "moderately"
    return answers


@pytest.mark.parametrize(
    ("positive", "total", "psychosocial", "stratum"),
    [
        (set(), 0, 0, "low"),
        ({1, 2, 5}, 3, 1, "low"),
        ({1, 2, 3, 4}, 4, 0, "medium"),
        ({1, 5, 6, 7}, 4, 3, "medium"),
        ({5, 6, 7, 8}, 4, 4, "high"),
        (set(range(1, 10)), 9, 5, "high"),
    ],
)
def test_start_back_scores_and_stratum(
    positive: set[int], total: int, psychosocial: int, stratum: str
) -> None:
    start_back = _questionnaire("start_back")
    scores = score_values(start_back, _start_back(positive))
    assert scores == {"total": total, "psychosocial": psychosocial}
    assert start_back.stratify is not None
    assert start_back.stratify.value(scores) == stratum
    assert start_back.stratify.value({}) is None  # unanswered: the attribute is left alone


def test_include_with_overrides_keeps_the_instrument_version() -> None:
    protocol = parse_protocol(
        _document({"include": "peg3", "id": "weekly_peg", "title": "This week"})
    )
    weekly = protocol.questionnaires[-1]
    assert (weekly.id, weekly.title, weekly.version) == ("weekly_peg", "This week", 1)
    assert [s.id for s in weekly.scores] == ["peg_score"]
    # The stored document is the expanded one: it does not depend on the library later.
    assert "include" not in protocol.model_dump(mode="json")["questionnaires"][-1]


def test_start_back_needs_its_attribute_or_stratify_null() -> None:
    problems = _problems(_document({"include": "start_back"}))
    assert "questionnaires[1].stratify.attribute" in problems
    assert "start_back_risk" in problems["questionnaires[1].stratify.attribute"]
    protocol = parse_protocol(_document({"include": "start_back", "stratify": None}))
    assert protocol.questionnaires[-1].stratify is None


def test_stratify_is_checked_against_the_attribute_and_scores() -> None:
    stratify = {
        "attribute": "start_back_risk",
        "strata": [
            {"value": "lowest", "score": "totl", "max": 3},
            {"value": "high", "score": "total"},
        ],
        "otherwise": "med",
    }
    problems = _problems(
        _document(
            {"include": "start_back", "stratify": stratify},
            participant_attributes={"start_back_risk": START_BACK_RISK},
        )
    )
    base = "questionnaires[1].stratify"
    assert "'total'" in problems[f"{base}.strata[0].score"]  # the suggestion
    assert "expected one of" in problems[f"{base}.strata[0].value"]
    assert problems[f"{base}.strata[1]"] == "give min, max or both"
    assert "expected one of" in problems[f"{base}.otherwise"]


def test_unknown_instrument_is_named_with_a_suggestion() -> None:
    problems = _problems(_document({"include": "peg"}, {"include": "peg3", "items": []}))
    message = problems["questionnaires[1].include"]
    assert "no instrument 'peg'" in message
    assert "peg3" in message  # suggested and listed
    assert "start_back" in message
    assert "questionnaires[2].items" in problems


def _upload(world: World, document: dict[str, Any]) -> str:
    study = world.study()
    response = world.client.post(
        f"/v1/studies/{study['id']}/protocols",
        content=yaml.safe_dump(document),
        headers={**world.staff(Role.admin), "Content-Type": "application/yaml"},
    )
    assert response.status_code == 201, response.text
    return str(study["id"])


def test_start_back_stratum_becomes_a_participant_attribute(world: World) -> None:
    document = _document(
        {"include": "start_back", "id": "screening"},
        participant_attributes={"start_back_risk": START_BACK_RISK},
    )
    # Care can follow the stratum: a rule reads the attribute.
    document["policy"]["rules"][0]["when"] = (
        'has(attributes.start_back_risk) && attributes.start_back_risk == "high"'
    )
    study_id = _upload(world, document)
    participant, token = world.enrolled_participant(study_id)
    me = Phone(world.client, participant, token, study_id)

    def attributes() -> dict[str, Any]:
        with world.session_factory() as session:
            row = session.get_one(Participant, uuid.UUID(me.id))
            return dict(row.attributes)

    now = world.clock.now()
    result = me.post("ema-responses", [response_to("screening", now, **_start_back({5, 6, 7, 8}))])
    assert result["items"][0]["status"] == "accepted", result
    assert attributes() == {"start_back_risk": "high"}
    # Staff see it like any attribute.
    shown = world.client.get(
        f"/v1/studies/{study_id}/participants/{me.id}", headers=world.staff(Role.admin)
    )
    assert shown.status_code == 200, shown.text
    assert shown.json()["attributes"] == {"start_back_risk": "high"}

    # A later screening moves the stratum; in a batch the latest answered wins, whatever
    # the order sent.
    world.clock.advance(timedelta(hours=2))
    later = world.clock.now()
    me.post(
        "ema-responses",
        [
            response_to("screening", later, **_start_back({1, 2})),
            response_to("screening", later - timedelta(hours=1), **_start_back({1, 2, 3, 4})),
        ],
    )
    assert attributes() == {"start_back_risk": "low"}
    # The same stratum again changes nothing (and is not audited again).
    me.post("ema-responses", [response_to("screening", later, **_start_back(set()))])
    with world.session_factory() as session:
        audited = session.scalars(
            sa.select(AuditEvent).where(
                AuditEvent.action == "participant.update",
                AuditEvent.resource_id == me.id,
            )
        ).all()
    reasons = [e.detail.get("reason") for e in audited]
    assert reasons.count("stratified") == 2
    # The value is not written to the audit log, only which attribute changed.
    assert all("high" not in str(e.detail) for e in audited)


def test_the_json_schema_offers_an_include() -> None:
    schema = protocol_json_schema()
    assert schema["properties"]["questionnaires"]["items"]["anyOf"][1] == {
        "$ref": "#/$defs/InstrumentInclude"
    }
    include = schema["$defs"]["InstrumentInclude"]
    assert include["properties"]["include"]["enum"] == list(instrument_names())
    assert include["required"] == ["include"]
    assert include["additionalProperties"] is False


def test_the_documented_snippet_validates() -> None:
    document = _document(
        {"include": "peg3"},
        {"include": "start_back", "id": "screening"},
        participant_attributes={"start_back_risk": START_BACK_RISK},
        tailoring_variables=[
            {
                "name": "peg_7d",
                "type": "number",
                "source": "ema",
                "item": "peg.peg_score",
                "aggregate": "mean",
                "window": "7d",
                "default": -1,
            }
        ],
    )
    document["policy"]["rules"][0]["when"] = (
        'peg_7d >= 5.0 || (has(attributes.start_back_risk) && attributes.start_back_risk == "high")'
    )
    protocol = parse_protocol(document)
    assert [q.id for q in protocol.questionnaires] == ["daily", "peg", "screening"]


def test_the_fragments_are_package_data() -> None:
    # An installed wheel must hold them: pyproject's package-data names the directory.
    config = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["app"]
    shipped = Path(__file__).parents[1] / "app"
    files = {p.relative_to(shipped) for pattern in patterns for p in shipped.glob(pattern)}
    assert {Path("protocols/instruments") / f"{n}.yaml" for n in instrument_names()} <= files


def test_a_stratum_rescores_the_pai(world: World) -> None:
    document: dict[str, Any] = yaml.safe_load(example_text(CHRONIC_PAIN_JITAI))
    document["participant_attributes"]["start_back_risk"] = START_BACK_RISK
    document["questionnaires"].append({"include": "start_back"})
    study_id = _upload(world, document)
    me = phone(world, study_id)
    now = world.clock.now()
    result = me.post("ema-responses", [response_to("start_back", now, **_start_back({1}))])
    assert result["items"][0]["status"] == "accepted", result
    with world.session_factory() as session:
        reasons = session.scalars(
            sa.select(PaiScore.reason).where(PaiScore.participant_id == uuid.UUID(me.id))
        ).all()
        row = session.get_one(Participant, uuid.UUID(me.id))
        assert row.attributes["start_back_risk"] == "low"
    assert "stratified" in reasons
