"""Deciding one decision point from its inputs, without the database: availability and
burden, the protocol's availability conditions, the study's policy (see ``policies``),
exclusions and bounds, and the fallback when anything fails. Shared by the live engine and
the preview."""

import math
from dataclasses import dataclass, field, replace
from typing import Any

import cel

from app.decision_rules import dose
from app.decision_rules.conditions import ExpressionError, holds
from app.decision_rules.moment import Moment
from app.decision_rules.policies import policy_for
from app.decision_rules.probabilities import Adjusted, adjust
from app.decision_rules.tailoring import Tailoring
from app.protocols.cel_rules import compile_condition, evaluate_condition
from app.protocols.document import Assignment, InterventionOption, Protocol
from app.protocols.primitives import minute_of_day

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
NO_RULE_MATCHED = "no rule matched"


@dataclass(frozen=True)
class Evaluation:
    available: bool
    unavailable_reason: str | None = None
    rule_id: str | None = None
    declared: dict[str, float] = field(default_factory=dict)
    probabilities: dict[str, float] = field(default_factory=dict)
    excluded: dict[str, str] = field(default_factory=dict)
    randomized: bool = False
    note: str | None = None
    fallback: bool = False
    error: str | None = None
    learning: dict[str, Any] | None = None
    # What the dose constraint did (None where it does not apply).
    dose: dict[str, Any] | None = None

    @property
    def deliberate(self) -> bool:
        """Whether an option is to be drawn (available, and some option has probability)."""
        return self.available and any(p > 0 for p in self.probabilities.values())


def builtins(moment: Moment) -> dict[str, Any]:
    return {
        "attributes": dict(moment.attributes),
        "stage": moment.stage,
        "track": moment.track,
        "phase": moment.phase,
        "decision_point": moment.decision_point,
        "weekday": WEEKDAYS[moment.local.weekday()],
        "local_hour": moment.local.hour,
        "pai_recommendation": moment.pai_recommendation,
    }


def is_contraindicated(protocol: Protocol, option: InterventionOption, attributes: Any) -> bool:
    """Whether the option's contraindication holds (ExpressionError if it cannot be told)."""
    if option.contraindicated_when is None:
        return False
    index = protocol.intervention_options.index(option)
    try:
        program = compile_condition(option.contraindicated_when)
        return evaluate_condition(program, {"attributes": dict(attributes)})
    except Exception as exc:
        raise ExpressionError(f"intervention_options[{index}].contraindicated_when", exc) from exc


def budget_reason(pushes_today: int, budget: int | None) -> str | None:
    """Why the daily push budget forbids another push, or None (``pushes_today`` counts
    the day's pushes so far and its scheduled EMA prompts still to come)."""
    if budget is not None and pushes_today >= budget:
        return (
            f"daily push budget reached ({pushes_today} pushes today, counting the scheduled "
            f"EMA prompts still to come; the budget is {budget})"
        )
    return None


def burden_reason(protocol: Protocol, moment: Moment) -> str | None:
    """Why the burden limits forbid a prompt now, or None."""
    limits = protocol.policy.availability
    if limits.quiet_hours is not None and limits.quiet_hours.contains(
        minute_of_day(moment.local.time())
    ):
        quiet = limits.quiet_hours
        return f"quiet hours ({quiet.start:%H:%M}-{quiet.end:%H:%M})"
    cap = limits.max_prompts_per_day
    track = protocol.smart.tracks.get(moment.track) if protocol.smart and moment.track else None
    if track is not None and track.max_prompts_per_day is not None:
        cap = track.max_prompts_per_day
    phase = protocol.phases.phase(moment.phase) if protocol.phases and moment.phase else None
    if phase is not None and phase.max_prompts_per_day is not None:
        # The phase's cap replaces the policy's; with a track's cap too, the lower applies.
        if track is not None and track.max_prompts_per_day is not None:
            cap = min(track.max_prompts_per_day, phase.max_prompts_per_day)
        else:
            cap = phase.max_prompts_per_day
    if moment.prompt_budget_factor < 1.0:
        # Without a declared cap the factor scales the decision moments a day, the most
        # interventions a day can have (docs/monitoring.md).
        base = cap if cap is not None else protocol.decision_moments_per_day
        if base:
            cap = math.floor(base * moment.prompt_budget_factor)
    if cap is not None and moment.prompts_today >= cap:
        return f"daily cap reached ({moment.prompts_today} prompts today, the cap is {cap})"
    over_budget = budget_reason(moment.pushes_today, limits.max_pushes_per_day)
    if over_budget is not None:
        return over_budget
    gap = limits.min_minutes_between_prompts
    if gap is not None and moment.last_prompt_at is not None:
        minutes = (moment.local - moment.last_prompt_at).total_seconds() / 60
        if minutes < gap:
            return f"too soon after the last prompt ({minutes:.0f} minutes ago, minimum {gap})"
    return None


def evaluate(protocol: Protocol, moment: Moment, tailoring: Tailoring) -> Evaluation:
    """The decision for one moment: unavailable, a rule's probabilities, or the fallback."""
    protocol.decision_point(moment.decision_point)  # KeyError for an unknown point
    reason = burden_reason(protocol, moment)
    if reason is not None:
        return Evaluation(available=False, unavailable_reason=reason)
    if tailoring.missing:
        return Evaluation(
            available=False,
            unavailable_reason="no data for "
            + ", ".join(tailoring.missing)
            + " (a tailoring variable without a default)",
        )
    # One converted context for every expression of this decision: converting a dict on
    # each evaluation costs far more than the evaluation itself.
    context = cel.Context({**tailoring.present(), **builtins(moment)})
    try:
        for index, condition in enumerate(protocol.policy.availability.conditions):
            if not holds(condition, context, f"policy.availability.conditions[{index}]"):
                return Evaluation(
                    available=False, unavailable_reason=f"availability condition false: {condition}"
                )
        proposal = policy_for(protocol).propose(protocol, moment, context)
        if proposal is None:
            return Evaluation(available=True, note=NO_RULE_MATCHED)
        adjusted = _adjust(protocol, proposal.probabilities, proposal.randomize, moment)
        probabilities, dosed = adjusted.probabilities, None
        if adjusted.randomized and proposal.rule_id in dose.adjusted_rules(protocol):
            probabilities, dosed = dose.constrain(
                protocol,
                probabilities,
                delivered_today=moment.prompts_today,
                history=moment.dose_history,
            )
    except Exception as exc:
        return fallback(protocol, moment, _describe(exc))
    return Evaluation(
        available=True,
        rule_id=proposal.rule_id,
        declared=proposal.probabilities,
        probabilities=probabilities,
        excluded=adjusted.excluded,
        randomized=sum(p > 0 for p in probabilities.values()) > 1,
        learning=proposal.learning,
        dose=dosed,
    )


def fallback(protocol: Protocol, moment: Moment, error: str) -> Evaluation:
    """The protocol's pre-declared fallback, marked as such with the error that caused it.

    The fallback still respects contraindications, tracks and preferences; if even it has
    nothing deliverable, nothing is delivered.
    """
    assignment: Assignment = protocol.policy.fallback
    declared = assignment.probabilities()
    base = Evaluation(available=True, declared=declared, fallback=True, error=error)
    try:
        adjusted = _adjust(protocol, declared, assignment.randomize is not None, moment)
    except Exception as exc:
        return replace(base, error=f"{error}; the fallback failed too: {_describe(exc)}")
    return replace(
        base,
        probabilities=adjusted.probabilities,
        excluded=adjusted.excluded,
        randomized=adjusted.randomized,
    )


def _adjust(
    protocol: Protocol, declared: dict[str, float], randomize: bool, moment: Moment
) -> Adjusted:
    preferences = protocol.personalization.preferences
    preferred: list[str] = []
    if preferences is not None:
        value = moment.attributes.get(preferences.attribute)
        preferred = list(value) if isinstance(value, list | tuple) else []
    track_options = None
    if protocol.smart is not None and moment.track in protocol.smart.tracks:
        options = protocol.smart.tracks[moment.track].options
        track_options = list(options) if options is not None else None
    phase = protocol.phases.phase(moment.phase) if protocol.phases and moment.phase else None
    phase_options = list(phase.options) if phase is not None and phase.options is not None else None
    return adjust(
        protocol,
        declared,
        randomize=randomize,
        contraindicated=lambda option: is_contraindicated(protocol, option, moment.attributes),
        track_options=track_options,
        preferred=preferred,
        phase_options=phase_options,
    )


def _describe(exc: Exception) -> str:
    if isinstance(exc, ExpressionError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"
