"""The FHIR R4 export (Bulk Data NDJSON): every exported resource validates with the
maintained `fhir.resources` models (its R4B package: the 4.x release it maintains, whose
Questionnaire, QuestionnaireResponse and Observation are R4's), and carries what a
receiving system needs: canonical questionnaires with their versions and branching,
typed answers by linkId, pseudonymous subjects, LOINC codes and UCUM units."""

import json
from datetime import timedelta
from typing import Any

import pytest
import yaml
from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.questionnaire import Questionnaire
from fhir.resources.R4B.questionnaireresponse import QuestionnaireResponse

from app.export.fhir import CEL_EXTENSION, questionnaire_resource
from app.protocols.loading import parse_protocol
from app.staff.models import Role
from tests.conftest import World
from tests.support.ingest import Phone, evening, morning, pain_study, phone
from tests.test_questionnaire_branching import _document as branching_document
from tests.test_wearables import summary

MODELS: dict[str, Any] = {
    "Questionnaire": Questionnaire,
    "QuestionnaireResponse": QuestionnaireResponse,
    "Observation": Observation,
}


def _ndjson(world: World, study_id: str, resource_type: str, **params: Any) -> list[Any]:
    response = world.client.get(
        f"/v1/studies/{study_id}/fhir/{resource_type}",
        params=params,
        headers=world.staff(Role.researcher),
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/fhir+ndjson")
    resources = [json.loads(line) for line in response.text.splitlines() if line]
    for resource in resources:
        assert resource["resourceType"] == resource_type
        MODELS[resource_type].model_validate(resource)  # raises on anything invalid
    return resources


@pytest.fixture
def me(world: World) -> Phone:
    return phone(world, pain_study(world))


def test_every_resource_validates_and_says_what_it_is(world: World, me: Phone) -> None:
    enrolled = world.clock.now()
    world.clock.advance(timedelta(hours=6))
    now = world.clock.now()
    me.post("ema-responses", [morning(now - timedelta(hours=3), pain=6), evening(now, pain=4)])
    hour = (enrolled + timedelta(hours=1)).replace(minute=0, second=0, microsecond=0)
    me.post(
        "wearables",
        [
            summary(hour, value=800),
            summary(hour, "sleep_minutes", 55, "min"),
            summary(hour, "resting_heart_rate", 61, "bpm"),
        ],
    )
    manifest = world.client.get(
        f"/v1/studies/{me.study_id}/fhir", headers=world.staff(Role.researcher)
    ).json()
    assert [o["type"] for o in manifest["output"]] == [
        "Questionnaire",
        "QuestionnaireResponse",
        "Observation",
    ]
    assert manifest["requiresAccessToken"] is True

    questionnaires = _ndjson(world, me.study_id, "Questionnaire")
    by_id = {q["id"]: q for q in questionnaires}
    assert {"morning-v1", "checkin-v1", "evening-v1"} <= set(by_id)
    morning_q = by_id["morning-v1"]
    assert morning_q["url"].endswith(":questionnaire:morning")
    types = {i["linkId"]: i["type"] for i in morning_q["item"]}
    assert types["pain"] == "integer"
    assert types["mood"] == "choice"
    assert types["sleep_duration"] == "integer"

    responses = _ndjson(world, me.study_id, "QuestionnaireResponse")
    assert len(responses) == 2
    first = next(r for r in responses if r["questionnaire"].endswith("morning|1"))
    assert first["subject"]["identifier"]["value"] == me.participant["code"]
    answers = {i["linkId"]: i["answer"][0] for i in first["item"]}
    assert answers["pain"] == {"valueInteger": 6}
    assert answers["mood"]["valueCoding"]["code"] == "neutral"
    evening_r = next(r for r in responses if r["questionnaire"].endswith("evening|1"))
    assert {"linkId": "self_harm", "answer": [{"valueBoolean": False}]} in evening_r["item"]

    observations = _ndjson(world, me.study_id, "Observation")
    pain = [o for o in observations if o["code"]["coding"][0]["code"] == "72514-3"]
    assert sorted(o["valueQuantity"]["value"] for o in pain) == [4.0, 6.0]
    codes = {o["code"]["coding"][0]["code"]: o for o in observations}
    assert codes["55423-8"]["valueQuantity"]["value"] == 800
    assert codes["93832-4"]["valueQuantity"]["code"] == "min"
    assert codes["40443-4"]["valueQuantity"]["code"] == "/min"
    assert codes["40443-4"]["category"][0]["coding"][0]["code"] == "vital-signs"
    assert all(o["valueQuantity"]["system"] == "http://unitsofmeasure.org" for o in observations)


def test_the_filters_apply_and_bad_ones_are_refused(world: World, me: Phone) -> None:
    me.post("ema-responses", [morning(world.clock.now())])
    world.clock.advance(timedelta(days=2))
    now = world.clock.now()
    me.post("ema-responses", [morning(now)])
    later = _ndjson(
        world, me.study_id, "QuestionnaireResponse", start=(now - timedelta(hours=1)).isoformat()
    )
    assert len(later) == 1
    bad = world.client.get(
        f"/v1/studies/{me.study_id}/fhir/Patient", headers=world.staff(Role.researcher)
    )
    assert bad.status_code == 422
    coordinator = world.client.get(
        f"/v1/studies/{me.study_id}/fhir/Observation", headers=world.staff(Role.coordinator)
    )
    assert coordinator.status_code == 403


def test_an_instrument_carries_its_citation_and_terms() -> None:
    document = branching_document()
    document["questionnaires"].append({"include": "peg3"})
    protocol = parse_protocol(yaml.safe_dump(document))
    peg = next(q for q in protocol.questionnaires if q.id == "peg")

    class _Study:
        slug = "instruments"

    resource = questionnaire_resource(_Study(), peg)  # type: ignore[arg-type]
    Questionnaire.model_validate(resource)
    assert "Krebs" in resource["description"]
    assert resource["copyright"]


def test_branching_becomes_enable_when() -> None:
    document = branching_document()
    document["questionnaires"][0]["items"].append(
        {"id": "note", "type": "free_text", "text": "Anything else?", "max_length": 200,
         "optional": True, "enable_when": "pain >= 7 && (flare == true || pain == 10)"}
    )  # fmt: skip
    protocol = parse_protocol(yaml.safe_dump(document))

    class _Study:
        slug = "branching"

    resource = questionnaire_resource(_Study(), protocol.questionnaires[0])  # type: ignore[arg-type]
    Questionnaire.model_validate(resource)
    items = {i["linkId"]: i for i in resource["item"]}
    assert items["flare"]["enableWhen"] == [
        {"question": "pain", "operator": ">=", "answerInteger": 7}
    ]
    assert items["trigger"]["enableWhen"] == [
        {"question": "flare", "operator": "=", "answerBoolean": True}
    ]
    # Beyond a plain comparison: the CEL text, in an extension.
    assert items["note"]["extension"] == [
        {"url": CEL_EXTENSION, "valueString": "pain >= 7 && (flare == true || pain == 10)"}
    ]
