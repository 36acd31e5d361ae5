"""Dose-constrained randomization (``policy.dose``): the probability formula and its bounds
(a property test), the upload checks, and on the simulator that the declared daily dose is
met on average, spread over the day, and that every logged probability and availability
estimate can be recomputed from the exported decisions."""

import csv
import io
import json
from collections import defaultdict
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from app.decision_rules.dose import (
    DoseHistory,
    constrain,
    planned_later_today,
    treat_high,
    treat_low,
)
from app.protocols.document import Protocol
from app.protocols.example_files import MINIMAL, example_text
from app.protocols.loading import parse_protocol
from app.protocols.problems import ProtocolInvalid
from app.simulation.behaviour import parse_behaviour
from app.simulation.report import write_outputs
from app.simulation.runner import simulate
from app.staff.models import Role
from tests.conftest import World
from tests.support.scheduling import upload

TIMES = ["09:00", "11:00", "13:00", "15:00", "17:00"]


def _document(**dose: Any) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(example_text(MINIMAL))
    document["decision_points"] = [{"id": "daytime", "times": TIMES}]
    document["intervention_options"].insert(
        1,
        {
            "id": "breathing",
            "category": "mindfulness",
            "title": "Breathe",
            "body": "Three slow breaths.",
        },
    )
    document["policy"]["rules"] = [
        {"id": "everyone", "when": "true", "randomize": {"movement": 0.5, "nothing": 0.5}}
    ]
    document["policy"]["probability_bounds"] = {"min": 0.05, "max": 0.95}
    document["policy"]["dose"] = {"target_per_day": 1.5, **dose}
    return document


def _protocol(**dose: Any) -> Protocol:
    return parse_protocol(yaml.safe_dump(_document(**dose)))


PROTOCOL = _protocol()


def test_the_probability_is_what_is_left_of_the_target_over_the_points_left() -> None:
    probabilities, record = constrain(
        PROTOCOL,
        {"movement": 0.5, "nothing": 0.5},
        delivered_today=0,
        history=DoseHistory(later_decision_points=4),
    )
    assert probabilities == pytest.approx({"movement": 0.3, "nothing": 0.7})
    assert record["probability_unclipped"] == pytest.approx(0.3)
    assert record["expected_points"] == 5
    assert record["availability_source"] == "declared"
    # One delivered, two points left after this one: (1.5 - 1) / 3.
    probabilities, _ = constrain(
        PROTOCOL,
        {"movement": 0.5, "nothing": 0.5},
        delivered_today=1,
        history=DoseHistory(later_decision_points=2),
    )
    assert probabilities["movement"] == pytest.approx(0.5 / 3)


def test_a_met_target_keeps_the_lower_bound_and_the_last_point_the_upper() -> None:
    done, record = constrain(
        PROTOCOL, {"movement": 0.5, "nothing": 0.5}, delivered_today=2, history=DoseHistory(3)
    )
    assert record["probability_unclipped"] == 0
    assert done["movement"] == pytest.approx(0.05)  # positivity: every arm keeps a chance
    last, record = constrain(
        PROTOCOL, {"movement": 0.5, "nothing": 0.5}, delivered_today=0, history=DoseHistory(0)
    )
    assert record["probability_unclipped"] == 1.0
    assert last["movement"] == pytest.approx(0.95)


def test_several_treat_options_share_the_dose_in_their_own_proportions() -> None:
    probabilities, record = constrain(
        PROTOCOL,
        {"movement": 0.3, "breathing": 0.1, "nothing": 0.6},
        delivered_today=0,
        history=DoseHistory(4),
    )
    assert probabilities["movement"] == pytest.approx(0.225)
    assert probabilities["breathing"] == pytest.approx(0.075)
    assert record["probability"] == pytest.approx(0.3)


def test_the_participants_own_availability_is_used_once_there_is_enough_of_it() -> None:
    protocol = _protocol(availability_window_days=7, min_decisions=10, expected_availability=1)
    few, record = constrain(
        protocol, {"movement": 0.5, "nothing": 0.5}, delivered_today=0, history=DoseHistory(4, 9, 3)
    )
    assert record["availability_source"] == "declared"
    assert few["movement"] == pytest.approx(0.3)
    enough, record = constrain(
        protocol,
        {"movement": 0.5, "nothing": 0.5},
        delivered_today=0,
        history=DoseHistory(4, 20, 10),
    )
    assert record["availability_source"] == "estimated"
    assert record["availability"] == 0.5
    assert enough["movement"] == pytest.approx(1.5 / 3)


@settings(max_examples=300, deadline=None)
@given(
    delivered=st.integers(0, 10),
    later=st.integers(0, 12),
    low=st.floats(0, 0.4),
    high=st.floats(0.6, 1),
    weights=st.lists(st.floats(0.01, 1), min_size=1, max_size=3),
    target=st.floats(0.1, 6),
)
def test_probabilities_stay_within_the_bounds_and_sum_to_one(
    delivered: int, later: int, low: float, high: float, weights: list[float], target: float
) -> None:
    document = _document()
    document["policy"]["probability_bounds"] = {"min": low, "max": high}
    document["policy"]["dose"]["target_per_day"] = target
    names = ["movement", "breathing", "stretch"][: len(weights)]
    for name in names[2:]:
        document["intervention_options"].insert(
            0, {"id": name, "category": "movement", "title": "t", "body": "b"}
        )
    protocol = parse_protocol(yaml.safe_dump(document))
    bounds = protocol.policy.probability_bounds
    declared = {**dict(zip(names, weights, strict=True)), "nothing": 0.5}
    probabilities, record = constrain(
        protocol, declared, delivered_today=delivered, history=DoseHistory(later)
    )
    assert sum(probabilities.values()) == pytest.approx(1.0)
    k = len(probabilities)
    for p in probabilities.values():
        assert min(low, 1 / k) - 1e-9 <= p <= max(high, 1 / k) + 1e-9
    assert 0 <= record["probability_unclipped"] <= 1
    if len(names) == 1:
        expected = min(treat_high(bounds), max(treat_low(bounds), record["probability_unclipped"]))
        assert probabilities["movement"] == pytest.approx(expected)


def test_the_preview_counts_the_points_left_from_the_protocol() -> None:
    local = datetime(2026, 3, 4, 12, 0, tzinfo=ZoneInfo("Europe/Berlin"))
    assert planned_later_today(PROTOCOL, local, study_day=3) == 3  # 13, 15 and 17:00
    assert planned_later_today(PROTOCOL, local.replace(hour=18), study_day=3) == 0


@pytest.mark.parametrize(
    ("dose", "field", "message"),
    [
        ({"rules": ["evryone"]}, "policy.dose.rules[0]", "unknown rule 'evryone'"),
        ({"rules": ["fixed"]}, "policy.dose.rules[0]", "must randomize between"),
        ({"target_per_day": 0}, "policy.dose.target_per_day", "greater than 0"),
        ({"expected_availability": 1.5}, "policy.dose.expected_availability", "less than"),
    ],
)
def test_a_bad_dose_constraint_names_the_field(
    dose: dict[str, Any], field: str, message: str
) -> None:
    document = _document(**dose)
    document["policy"]["rules"].append({"id": "fixed", "when": "false", "option": "movement"})
    with pytest.raises(ProtocolInvalid) as caught:
        parse_protocol(yaml.safe_dump(document))
    problems = {p.path: p.message for p in caught.value.problems}
    assert field in problems, problems
    assert message in problems[field]


def test_a_dose_constraint_with_nothing_to_adjust_is_refused() -> None:
    document = _document()
    document["policy"]["rules"] = [{"id": "always", "when": "true", "option": "movement"}]
    with pytest.raises(ProtocolInvalid) as caught:
        parse_protocol(yaml.safe_dump(document))
    assert [p.path for p in caught.value.problems] == ["policy.dose.rules"]


def test_the_upload_api_names_the_dose_field(world: World) -> None:
    study = world.study()
    response = world.client.post(
        f"/v1/studies/{study['id']}/protocols",
        content=yaml.safe_dump(_document(rules=["nobody"])),
        headers={**world.staff(Role.coordinator), "Content-Type": "application/yaml"},
    )
    assert response.status_code == 422, response.text
    fields = {e["field"]: e["message"] for e in response.json()["errors"]}
    assert "unknown rule 'nobody'" in fields["body.policy.dose.rules[0]"]


def test_the_preview_shows_the_dose_record(world: World) -> None:
    study = world.study()
    upload(world, study["id"], yaml.safe_dump(_document()))
    response = world.client.post(
        f"/v1/studies/{study['id']}/decisions/preview",
        json={
            "decision_point": "daytime",
            "local_time": "2026-03-04T13:00:00",
            "tailoring": {},
            "prompts_today": 1,
        },
        headers=world.staff(Role.admin),
    )
    assert response.status_code == 200, response.text
    body = response.json()
    # Two points after 13:00 are left: (1.5 - 1) / 3.
    assert body["dose"]["later_decision_points"] == 2
    assert body["probabilities"]["movement"] == pytest.approx(0.5 / 3)
    assert body["learning"] is None


BEHAVIOUR = parse_behaviour("answering: {probability: 0.9, weekly_change: 0}\n")


def _simulated_decisions(tmp_path: Path, document: dict[str, Any]) -> list[dict[str, str]]:
    sim = simulate(yaml.safe_dump(document), participants=16, days=12, seed=5, behaviour=BEHAVIOUR)
    try:
        write_outputs(sim, tmp_path)
    finally:
        sim.close()
    text = (tmp_path / "decisions.csv").read_text()
    return list(csv.DictReader(io.StringIO(text)))


def _per_day(rows: list[dict[str, str]]) -> dict[tuple[str, str], list[dict[str, str]]]:
    """The participant-days with all five decision points."""
    days: dict[tuple[str, str], list[dict[str, str]]] = defaultdict(list)
    for row in rows:
        days[row["participant_id"], row["study_day"]].append(row)
    return {key: day for key, day in days.items() if len(day) == len(TIMES)}


def test_the_simulated_dose_meets_the_target_spread_over_the_day(tmp_path: Path) -> None:
    rows = _simulated_decisions(tmp_path, _document())
    days = _per_day(rows)
    assert len(days) >= 100
    treated = [sum(r["treated"] == "1" for r in day) for day in days.values()]
    mean = sum(treated) / len(treated)
    # 1.5 a day against 2.5 for the rule's own 0.5 at five points; SE about 0.06.
    assert 1.3 <= mean <= 1.7, mean
    by_point: dict[str, list[int]] = defaultdict(list)
    for day in days.values():
        for row in day:
            by_point[row["local_time"][11:16]].append(row["treated"] == "1")
    for time, hits in by_point.items():
        assert 0.1 <= sum(hits) / len(hits) <= 0.6, (time, sum(hits) / len(hits))
    # Every probability recomputes from its logged inputs, and the draw used it.
    for row in rows:
        assert row["available"] == "true"
        dose = json.loads(row["dose"])
        left = max(0.0, dose["target_per_day"] - dose["delivered_today"])
        raw = min(1.0, left / (1 + dose["availability"] * dose["later_decision_points"]))
        assert dose["probability_unclipped"] == pytest.approx(raw)
        assert json.loads(row["probabilities"])["movement"] == pytest.approx(
            min(0.95, max(0.05, raw))
        )


def test_the_estimated_availability_recomputes_from_the_export(tmp_path: Path) -> None:
    # Quiet hours make the 17:00 point unavailable: four of five are available.
    document = _document(availability_window_days=3, min_decisions=10)
    document["policy"]["availability"] = {"quiet_hours": {"start": "16:30", "end": "18:00"}}
    rows = _simulated_decisions(tmp_path, document)
    by_participant: dict[str, list[tuple[datetime, bool]]] = defaultdict(list)
    for row in rows:
        decided = datetime.fromisoformat(row["decided_at"])
        by_participant[row["participant_id"]].append((decided, row["available"] in ("1", "true")))
    estimated = 0
    for row in rows:
        if not row["dose"]:
            continue
        dose = json.loads(row["dose"])
        decided = datetime.fromisoformat(row["decided_at"])
        window = [
            available
            for at, available in by_participant[row["participant_id"]]
            if decided - timedelta(days=3) <= at < decided
        ]
        assert dose["recent_decisions"] == len(window)
        assert dose["recent_available"] == sum(window)
        if dose["availability_source"] == "estimated":
            estimated += 1
            assert dose["availability"] == pytest.approx(sum(window) / len(window))
            assert 0.75 <= dose["availability"] <= 0.85
    assert estimated > 100
    treated = [sum(r["treated"] == "1" for r in day) for day in _per_day(rows).values()]
    assert 1.3 <= sum(treated) / len(treated) <= 1.7
