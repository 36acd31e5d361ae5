"""SMART: the participant's stage and track, and the seeded re-randomization by response
at the first decision after a stage ends."""

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from app.decision_rules.models import SmartAssignment
from app.decision_rules.seeding import choose, derive_seed, uniform
from app.decision_rules.tailoring import Tailoring
from app.protocols.cel_rules import compile_condition, evaluate_condition
from app.protocols.document import Protocol, Stage, TrackAssignment


@dataclass
class SmartState:
    stage: str = ""
    track: str = ""
    # Assignments made now (to be added to the session by the caller).
    new: list[SmartAssignment] = field(default_factory=list)


def smart_seed(study_seed: int, participant_id: uuid.UUID, stage_id: str) -> int:
    return derive_seed(study_seed, participant_id, "smart", stage_id)


def stage_index(protocol: Protocol, study_day: int) -> int:
    assert protocol.smart is not None  # noqa: S101
    stage = protocol.stage_on_day(study_day)
    return protocol.smart.stages.index(stage) if stage is not None else 0


def responder(
    stage: Stage, tailoring: Tailoring, context: Mapping[str, Any]
) -> tuple[bool, str | None]:
    """Whether the stage's responder criterion holds; a criterion that cannot be evaluated
    (missing data, an error) counts as non-response, with the reason."""
    if stage.responder_when is None:
        return False, "the stage has no responder criterion"
    try:
        program = compile_condition(stage.responder_when)
        return evaluate_condition(program, {**tailoring.present(), **context}), None
    except Exception as exc:
        missing = [name for name in tailoring.missing if name in stage.responder_when]
        hint = f" (no data for {', '.join(missing)})" if missing else ""
        return False, f"{type(exc).__name__}: {exc}{hint}"


def advance(
    protocol: Protocol,
    *,
    participant_id: uuid.UUID,
    study_id: uuid.UUID,
    protocol_version: int,
    study_day: int,
    existing: Mapping[str, SmartAssignment],
    tailoring: Tailoring,
    attributes: Mapping[str, Any],
    pai_recommendation: str,
    now: datetime,
    decision_id: uuid.UUID | None,
) -> SmartState:
    """The stage and track on ``study_day``, assigning every track not yet assigned.

    Stages whose end passed without an assignment (the first decision after the end) are
    evaluated now, in order, each with the data available now.
    """
    smart = protocol.smart
    if smart is None:
        return SmartState()
    current = stage_index(protocol, study_day)
    state = SmartState(stage=smart.stages[current].id)
    seed_base = protocol.study.random_seed

    def assign(
        stage: Stage,
        assignment: TrackAssignment,
        *,
        previous: Stage | None,
        responded: bool | None,
        error: str | None,
    ) -> None:
        seed = smart_seed(seed_base, participant_id, stage.id)
        draw = uniform(seed)
        probabilities = assignment.probabilities()
        row = SmartAssignment(
            participant_id=participant_id,
            study_id=study_id,
            protocol_version=protocol_version,
            stage_id=stage.id,
            previous_stage_id=previous.id if previous else None,
            previous_track=state.track if previous else None,
            responder=responded,
            responder_error=error,
            tailoring=dict(tailoring.values) if previous else {},
            probabilities=probabilities,
            seed=seed,
            draw=draw,
            track=choose(probabilities, draw),
            decision_id=decision_id,
            assigned_at=now,
        )
        state.new.append(row)
        state.track = row.track

    first = smart.stages[0]
    if first.id in existing:
        state.track = existing[first.id].track
    elif smart.initial is not None:
        assign(first, smart.initial, previous=None, responded=None, error=None)
    for index in range(1, current + 1):
        stage, previous = smart.stages[index], smart.stages[index - 1]
        if stage.id in existing:
            state.track = existing[stage.id].track
            continue
        if previous.next is None:
            continue
        context = {
            "attributes": dict(attributes),
            "stage": previous.id,
            "track": state.track,
            "pai_recommendation": pai_recommendation,
        }
        responded, error = responder(previous, tailoring, context)
        assignment = previous.next.responders if responded else previous.next.non_responders
        assign(stage, assignment, previous=previous, responded=responded, error=error)
    return state
