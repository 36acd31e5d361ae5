"""Previewing a decision: the active protocol evaluated for given tailoring values,
attributes, decision point and local time, storing nothing. For coordinators checking
what a protocol does before participants meet it."""

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from app.core.errors import InvalidInputError
from app.decision_rules.conditions import ExpressionError
from app.decision_rules.dose import DoseHistory, planned_later_today
from app.decision_rules.evaluation import Evaluation, evaluate
from app.decision_rules.evaluation import is_contraindicated as contraindication_holds
from app.decision_rules.learning import Posterior
from app.decision_rules.moment import Moment
from app.decision_rules.onboarding import attribute_problems
from app.decision_rules.tailoring import Tailoring, finish
from app.protocols.cel_rules import suggestion
from app.protocols.document import AttributeVariable, Protocol, TailoringVariable, ValueType


@dataclass(frozen=True)
class PreviewInput:
    decision_point: str
    # Wall-clock time of the participant (any offset given is ignored).
    local_time: datetime
    tailoring: Mapping[str, Any]
    attributes: Mapping[str, Any]
    study_day: int = 1
    track: str | None = None
    # The treatment phase (default: the protocol's initial phase).
    phase: str | None = None
    prompts_today: int = 0
    pushes_today: int = 0
    minutes_since_last_prompt: int | None = None
    # Decision points still planned later that day (None: from the protocol's schedule).
    later_decision_points: int | None = None
    # The study's current posterior (None: before the first update, or no learning policy).
    posterior: Posterior | None = field(default=None, compare=False)


@dataclass(frozen=True)
class OptionConsidered:
    option_id: str
    category: str
    # The probability the rule (or fallback) declared; None if it did not name the option.
    declared_probability: float | None
    probability: float
    # None when the contraindication could not be evaluated.
    contraindicated: bool | None
    excluded_because: str | None


@dataclass(frozen=True)
class PreviewResult:
    # The wall-clock time evaluated, in the study's default time zone.
    local: datetime
    evaluation: Evaluation
    tailoring: Tailoring
    stage: str
    track: str
    pai_recommendation: str
    pai_scores: dict[str, float]
    options: list[OptionConsidered]
    phase: str = ""


def _type_problem(variable: TailoringVariable, value: Any) -> str | None:
    kind = variable.type
    if kind is ValueType.boolean and not isinstance(value, bool):
        return f"expected true or false, got {value!r}"
    if kind is ValueType.integer and (isinstance(value, bool) or not isinstance(value, int)):
        return f"expected a whole number, got {value!r}"
    if kind is ValueType.number and (
        isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value)
    ):
        return f"expected a number, got {value!r}"
    if kind is ValueType.string and not isinstance(value, str):
        return f"expected text, got {value!r}"
    if kind is ValueType.string_list and (
        not isinstance(value, list) or not all(isinstance(v, str) for v in value)
    ):
        return f"expected a list of texts, got {value!r}"
    return None


def input_problems(protocol: Protocol, request: PreviewInput) -> list[tuple[str, str]]:
    """(field, reason) for every missing, unknown or mistyped input."""
    problems: list[tuple[str, str]] = []
    points = [p.id for p in protocol.decision_points]
    if request.decision_point not in points:
        problems.append(
            (
                "decision_point",
                f"unknown decision point '{request.decision_point}'"
                f"{suggestion(request.decision_point, points)} (declared: {', '.join(points)})",
            )
        )
    tracks = sorted(protocol.smart.tracks) if protocol.smart else []
    if request.track and request.track not in tracks:
        problems.append(
            (
                "track",
                f"unknown track '{request.track}'{suggestion(request.track, tracks)} "
                f"(declared: {', '.join(tracks) or 'none'})",
            )
        )
    phases = [p.id for p in protocol.phases.steps] if protocol.phases else []
    if request.phase and request.phase not in phases:
        problems.append(
            (
                "phase",
                f"unknown phase '{request.phase}'{suggestion(request.phase, phases)} "
                f"(declared: {', '.join(phases) or 'none'})",
            )
        )
    names = [v.name for v in protocol.tailoring_variables]
    for variable in protocol.tailoring_variables:
        if isinstance(variable, AttributeVariable):
            continue  # read from the attributes
        if variable.name not in request.tailoring:
            problems.append(
                (
                    f"tailoring.{variable.name}",
                    f"missing: give a {variable.type} value, or null for 'no data'",
                )
            )
            continue
        value = request.tailoring[variable.name]
        reason = None if value is None else _type_problem(variable, value)
        if reason is not None:
            problems.append((f"tailoring.{variable.name}", f"{variable.type}: {reason}"))
    for name in request.tailoring:
        declared = protocol.variable(name) if name in names else None
        if declared is None:
            problems.append(
                (
                    f"tailoring.{name}",
                    f"not a tailoring variable of the protocol{suggestion(name, names)}",
                )
            )
        elif isinstance(declared, AttributeVariable):
            problems.append(
                (
                    f"tailoring.{name}",
                    f"comes from attributes.{declared.attribute}; give it there",
                )
            )
    problems += attribute_problems(protocol, request.attributes)
    return problems


def preview(protocol: Protocol, request: PreviewInput) -> PreviewResult:
    """Evaluate the protocol for the request; InvalidInputError (422) naming every bad input."""
    problems = input_problems(protocol, request)
    if problems:
        raise InvalidInputError(
            f"{len(problems)} input{'s are' if len(problems) > 1 else ' is'} missing or invalid",
            code="preview_invalid",
            field_errors=problems,
        )
    zone = ZoneInfo(protocol.study.default_timezone)
    local = request.local_time.replace(tzinfo=zone)
    raw = {
        v.name: (
            request.attributes.get(v.attribute)
            if isinstance(v, AttributeVariable)
            else request.tailoring.get(v.name)
        )
        for v in protocol.tailoring_variables
    }
    tailoring = finish(protocol, raw)
    stage = protocol.stage_on_day(request.study_day)
    pai = protocol.personalization.pai
    scores = pai.predict(request.attributes) if pai else {}
    recommendation = pai.recommend(request.attributes) if pai else ""
    last = (
        local - timedelta(minutes=request.minutes_since_last_prompt)
        if request.minutes_since_last_prompt is not None
        else None
    )
    moment = Moment(
        decision_point=request.decision_point,
        local=local,
        attributes=request.attributes,
        stage=stage.id if stage else "",
        track=request.track or "",
        phase=request.phase or (protocol.phases.initial_phase if protocol.phases else ""),
        pai_recommendation=recommendation,
        prompts_today=request.prompts_today,
        pushes_today=request.pushes_today,
        last_prompt_at=last,
        posterior=request.posterior,
        dose_history=DoseHistory(
            later_decision_points=(
                request.later_decision_points
                if request.later_decision_points is not None
                else planned_later_today(protocol, local, request.study_day)
            )
        ),
    )
    evaluation = evaluate(protocol, moment, tailoring)
    return PreviewResult(
        local=local,
        evaluation=evaluation,
        tailoring=tailoring,
        stage=moment.stage,
        track=moment.track,
        pai_recommendation=recommendation,
        pai_scores=scores,
        options=_options(protocol, evaluation, request.attributes),
        phase=moment.phase,
    )


def _options(
    protocol: Protocol, evaluation: Evaluation, attributes: Mapping[str, Any]
) -> list[OptionConsidered]:
    considered = []
    for option in protocol.intervention_options:
        try:
            flag: bool | None = contraindication_holds(protocol, option, attributes)
        except ExpressionError:
            flag = None
        considered.append(
            OptionConsidered(
                option_id=option.id,
                category=str(option.category),
                declared_probability=evaluation.declared.get(option.id),
                probability=evaluation.probabilities.get(option.id, 0.0),
                contraindicated=flag,
                excluded_because=evaluation.excluded.get(option.id),
            )
        )
    return considered
