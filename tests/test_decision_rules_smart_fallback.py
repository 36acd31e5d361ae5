"""SMART responder and non-responder paths, the fallback, and re-deriving draws."""

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from app.decision_rules.engine import decision_seed
from app.decision_rules.models import Decision, SmartAssignment
from app.decision_rules.seeding import choose, derive_seed, uniform
from app.decision_rules.smart import smart_seed
from app.protocols.example_files import MINIMAL, example_text
from app.staff.models import Role
from tests.conftest import World
from tests.support.decisions import EXAMPLE, Trial, example_document

ENROLLED = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
DAY28 = datetime(2026, 3, 29, 12, 0, tzinfo=UTC)  # 14:00 in Berlin (UTC+2 from today)
SEED = 20261125


def pain_history(trial: Trial, participant: uuid.UUID, baseline: int, recent: int) -> None:
    for day in range(1, 7):
        trial.ema(participant, "morning", {"pain": baseline}, ENROLLED + timedelta(days=day))
    for day in range(22, 28):
        trial.ema(participant, "morning", {"pain": recent}, ENROLLED + timedelta(days=day))


def assignments(trial: Trial, participant: uuid.UUID) -> list[SmartAssignment]:
    with trial.world.session_factory() as session:
        return list(
            session.scalars(
                sa.select(SmartAssignment).where(SmartAssignment.participant_id == participant)
            )
        )


@pytest.mark.parametrize(
    ("recent", "responder", "tracks"),
    [
        (4, True, {"maintain": 0.5, "step_down": 0.5}),
        (7, False, {"intensify": 0.5, "maintain": 0.5}),
    ],
)
def test_stage_end_rerandomizes_by_response(
    world: World, recent: int, responder: bool, tracks: dict[str, float]
) -> None:
    world.clock.set(ENROLLED)
    trial = Trial(world)
    participant = trial.participant(enrolled_at=ENROLLED)
    pain_history(trial, participant, baseline=8, recent=recent)
    # Still stage 1 the day before: no assignment yet (the example has no initial track).
    before, _ = trial.decide_one(participant, "afternoon", DAY28 - timedelta(days=1))
    assert (before.stage, before.track) == ("stage_1", "")
    assert assignments(trial, participant) == []

    decision, _ = trial.decide_one(participant, "afternoon", DAY28)
    [row] = assignments(trial, participant)
    assert (row.stage_id, row.previous_stage_id) == ("stage_2", "stage_1")
    assert row.responder is responder
    assert row.responder_error is None
    assert row.tailoring["pain_mean_7d"] == float(recent)
    assert row.tailoring["pain_baseline"] == 8.0
    assert row.probabilities == tracks
    assert row.seed == smart_seed(SEED, participant, "stage_2")
    assert row.draw == uniform(row.seed)
    assert row.track == choose(tracks, row.draw)
    assert row.decision_id == decision.id
    assert (decision.stage, decision.track) == ("stage_2", row.track)

    # Later decisions keep the track; the randomization happens once.
    later, _ = trial.decide_one(participant, "afternoon", DAY28 + timedelta(days=3))
    assert later.track == row.track
    assert len(assignments(trial, participant)) == 1


def test_responder_criterion_without_data_means_non_responder(world: World) -> None:
    # Without defaults for its variables (as the example first shipped), the criterion
    # cannot be evaluated: an error, and a non-responder.
    document = example_document()
    for variable in document["tailoring_variables"]:
        if variable["name"] in ("pain_mean_7d", "pain_baseline"):
            del variable["default"]
    world.clock.set(ENROLLED)
    trial = Trial(world, document)
    participant = trial.participant(enrolled_at=ENROLLED)
    for day in range(1, 7):
        trial.ema(participant, "morning", {"pain": 8}, ENROLLED + timedelta(days=day))
    decision, _ = trial.decide_one(participant, "afternoon", DAY28)
    [row] = assignments(trial, participant)
    assert row.responder is False
    assert row.responder_error is not None
    assert "pain_mean_7d" in row.responder_error
    assert row.probabilities == {"intensify": 0.5, "maintain": 0.5}
    # The decision itself is unavailable: pain_mean_7d has no default.
    assert not decision.available
    assert decision.track == row.track


def test_the_examples_responder_criterion_reads_no_data_as_non_responder(world: World) -> None:
    # The shipped example's defaults (-1: no data) make the same case a plain "no".
    world.clock.set(ENROLLED)
    trial = Trial(world)
    participant = trial.participant(enrolled_at=ENROLLED)
    for day in range(1, 7):
        trial.ema(participant, "morning", {"pain": 8}, ENROLLED + timedelta(days=day))
    decision, _ = trial.decide_one(participant, "afternoon", DAY28)
    [row] = assignments(trial, participant)
    assert (row.responder, row.responder_error) == (False, None)
    assert row.probabilities == {"intensify": 0.5, "maintain": 0.5}
    assert decision.available
    assert decision.tailoring["pain_mean_7d"] == -1


def test_initial_track_is_assigned_at_the_first_decision(world: World) -> None:
    document = example_document()
    document["smart"]["initial"] = {"randomize": {"maintain": 0.5, "intensify": 0.5}}
    world.clock.set(ENROLLED)
    trial = Trial(world, document)
    participant = trial.participant(enrolled_at=ENROLLED)
    decision, _ = trial.decide_one(participant, "afternoon", ENROLLED + timedelta(days=2))
    [row] = assignments(trial, participant)
    assert (row.stage_id, row.previous_stage_id, row.responder) == ("stage_1", None, None)
    assert row.seed == smart_seed(SEED, participant, "stage_1")
    assert decision.track == row.track == choose(row.probabilities, uniform(row.seed))


def broken_rule_protocol(fallback: dict[str, Any]) -> dict[str, Any]:
    document = example_document()
    # Passes the upload check (its samples are never negative) but fails at run time
    # with the default steps_3h = -1: uint(-1) overflows.
    document["policy"]["rules"].insert(
        0, {"id": "broken", "when": "uint(steps_3h) > 10u", "option": "activity_pacing"}
    )
    document["policy"]["fallback"] = fallback
    # Every option of a randomized fallback must be allowed in every treatment phase: the
    # example's education phase has no activity pacing, and phases are not what this tests.
    document.pop("phases", None)
    document["adaptation"] = "smart"
    return document


def test_a_failing_rule_uses_the_fallback_and_says_so(world: World) -> None:
    world.clock.set(ENROLLED)
    trial = Trial(world, broken_rule_protocol({"option": "nothing"}))
    participant = trial.participant(enrolled_at=ENROLLED)
    trial.ema(participant, "morning", {"pain": 5}, ENROLLED + timedelta(days=1))
    decision, delivery = trial.decide_one(participant, "afternoon", DAY28 - timedelta(days=20))
    assert decision.fallback
    assert decision.available
    assert decision.rule_id is None
    assert decision.error is not None
    assert decision.error.startswith("policy.rules[0].when: OverflowError")
    assert decision.option_id == "nothing"
    assert decision.probabilities == {"nothing": 1.0}
    assert delivery is None


def test_a_randomized_fallback_logs_its_probabilities(world: World) -> None:
    world.clock.set(ENROLLED)
    fallback = {"randomize": {"activity_pacing": 0.3, "nothing": 0.7}}
    trial = Trial(world, broken_rule_protocol(fallback))
    participant = trial.participant(enrolled_at=ENROLLED)
    trial.ema(participant, "morning", {"pain": 5}, ENROLLED + timedelta(days=1))
    decision, delivery = trial.decide_one(participant, "afternoon", DAY28 - timedelta(days=20))
    assert decision.fallback
    assert decision.randomized
    assert decision.probabilities == {"activity_pacing": 0.3, "nothing": 0.7}
    assert decision.option_id == choose(decision.probabilities, uniform(decision.seed or 0))
    assert (delivery is not None) == (decision.option_id == "activity_pacing")


def test_attributes_that_do_not_fit_a_later_protocol_fall_back(world: World) -> None:
    """A participant created before the study had a protocol, then moved onto one that
    requires attributes: the PAI cannot be scored, so the decision falls back, logged."""
    world.clock.set(ENROLLED)
    admin = world.staff(Role.admin)
    study = world.study()
    created, _ = world.enrolled_participant(study["id"])
    uploaded = world.client.post(
        f"/v1/studies/{study['id']}/protocols",
        content=EXAMPLE,
        headers={**admin, "Content-Type": "application/yaml"},
    )
    assert uploaded.status_code == 201, uploaded.text
    activated = world.client.post(
        f"/v1/studies/{study['id']}/protocols/1/activate",
        json={"apply_to": "all_participants"},
        headers=admin,
    )
    assert activated.status_code == 200, activated.text
    trial = Trial.of(world, study["id"])
    participant = uuid.UUID(created["id"])
    decision, delivery = trial.decide_one(participant, "afternoon", DAY28 - timedelta(days=20))
    assert decision.fallback
    assert decision.error is not None
    assert "attributes.baseline_interference: a value is required" in decision.error
    assert delivery is None
    # In quiet hours the failure is still logged, but the participant is unavailable: a
    # fallback never overrides the burden limits.
    night = (DAY28 - timedelta(days=20)).replace(hour=22)
    quiet, _ = trial.decide_one(participant, "evening", night)
    assert not quiet.available
    assert quiet.unavailable_reason == "quiet hours (21:30-07:30)"
    assert quiet.fallback
    assert quiet.error is not None


def test_draws_re_derive_from_the_log(world: World) -> None:
    world.clock.set(ENROLLED)
    trial = Trial(world, example_text(MINIMAL))
    participants = [trial.participant({}, enrolled_at=ENROLLED) for _ in range(3)]
    when = ENROLLED + timedelta(days=2, hours=2)
    items = [trial.item(p, "afternoon", when) for p in participants for _ in range(4)]
    trial.decide(items)
    with world.session_factory() as session:
        rows = session.scalars(sa.select(Decision)).all()
    assert len(rows) == 12
    for row in rows:
        assert row.decision_index is not None
        assert row.seed == decision_seed(1, row.participant_id, "afternoon", row.decision_index)
        assert row.draw == uniform(row.seed)
        assert row.option_id == choose(row.probabilities, row.draw)
        assert row.probability == row.probabilities[row.option_id]
    assert len({row.seed for row in rows}) == 12


def test_seed_derivation_is_fixed_forever() -> None:
    """Changing how seeds or draws are derived would make logged decisions impossible to
    re-derive: these values are pinned."""
    participant = uuid.UUID("01a212e1-4d0e-76d5-a5bc-da577b1494d0")
    seed = derive_seed(SEED, participant, "afternoon", 7)
    assert seed == 2122268929838072694
    assert uniform(seed) == 0.12421821983539949
    assert choose({"nothing": 0.4, "pain_acceptance": 0.6}, 0.39) == "nothing"
    assert choose({"pain_acceptance": 0.6, "nothing": 0.4}, 0.41) == "pain_acceptance"
