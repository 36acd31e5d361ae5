"""Branching (``items[].enable_when``): checked at upload (earlier items only, types that
match), enforced at ingestion per item (an answer to an item not asked is rejected with
the reason; a required item is required only when asked)."""

from typing import Any

import pytest
import yaml

from app.protocols.example_files import MINIMAL, example_text
from app.protocols.loading import parse_protocol
from app.protocols.problems import ProtocolInvalid
from app.staff.models import Role
from tests.conftest import World
from tests.support.ingest import Phone, response_to


def _document(**flare: Any) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(example_text(MINIMAL))
    document["questionnaires"][0]["items"] = [
        {
            "id": "pain",
            "type": "numeric_rating",
            "text": "Pain?",
            "min": 0,
            "max": 10,
            "optional": True,
        },
        {
            "id": "flare",
            "type": "yes_no",
            "text": "Is this a flare?",
            "enable_when": "pain >= 7",
            **flare,
        },
        {
            "id": "trigger",
            "type": "single_choice",
            "text": "What set it off?",
            "choices": [
                {"value": "activity", "label": "Activity"},
                {"value": "weather", "label": "Weather"},
            ],
            "enable_when": "flare == true",
        },
    ]
    return document


@pytest.mark.parametrize(
    ("condition", "message"),
    [
        ("trigger == 'weather'", "only the answers to earlier items"),
        ("flare == true", "only the answers to earlier items"),  # its own answer
        ("pian >= 7", "did you mean 'pain'"),
        ("pain > 'high'", "No such overload"),
    ],
)
def test_a_bad_condition_names_the_field(condition: str, message: str) -> None:
    with pytest.raises(ProtocolInvalid) as caught:
        parse_protocol(yaml.safe_dump(_document(enable_when=condition)))
    problems = {p.path: p.message for p in caught.value.problems}
    field = "questionnaires[0].items[1].enable_when"
    assert field in problems, problems
    assert message in problems[field]


@pytest.fixture
def me(world: World) -> Phone:
    study = world.study()
    uploaded = world.client.post(
        f"/v1/studies/{study['id']}/protocols",
        content=yaml.safe_dump(_document()),
        headers={**world.staff(Role.admin), "Content-Type": "application/yaml"},
    )
    assert uploaded.status_code == 201, uploaded.text
    participant, token = world.enrolled_participant(study["id"])
    return Phone(world.client, participant, token, study["id"])


def _response(world: World, **answers: Any) -> dict[str, Any]:
    return response_to("daily", world.clock.now(), **answers)


def test_answers_follow_the_branches(world: World, me: Phone) -> None:
    cases: list[tuple[dict[str, Any], tuple[str, str] | None]] = [
        ({"pain": 3}, None),  # flare not asked: not required
        ({"pain": 3, "flare": True}, ("answers.flare", "not asked: its enable_when")),
        ({"pain": 8}, ("answers.flare", "an answer is required")),  # asked, so required
        ({"pain": 8, "flare": True}, ("answers.trigger", "an answer is required")),
        ({"pain": 8, "flare": False}, None),
        ({"pain": 8, "flare": True, "trigger": "weather"}, None),
        ({"pain": 8, "flare": False, "trigger": "weather"}, ("answers.trigger", "not asked")),
        ({}, None),  # pain skipped: a condition that reads it is false
    ]
    result = me.post("ema-responses", [_response(world, **answers) for answers, _ in cases])
    for index, ((answers, expected), item) in enumerate(zip(cases, result["items"], strict=True)):
        if expected is None:
            assert item["status"] == "accepted", (answers, item)
            continue
        field, message = expected
        assert item["status"] == "rejected", (answers, item)
        [error] = item["errors"]
        assert error["field"] == f"body.items[{index}].{field}"
        assert error["message"].startswith(message), error
