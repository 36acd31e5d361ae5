"""Protocol warnings: what is allowed but probably not meant, found from the document alone.

Warnings never block an upload (errors do); they are returned with a validation or an
upload and printed by `kairos protocol validate`. Conditions are judged over the same sample
values the expression checker uses, so "always" and "never" mean "for every sampled value
of the names the condition uses", a strong hint rather than a proof; the simulator
(`kairos simulate`) confirms them on simulated participants.
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from app.protocols.cel_rules import Scope, compile_condition, sample_contexts
from app.protocols.document import Protocol
from app.protocols.expression_checks import decision_scope
from app.protocols.problems import path_of
from app.protocols.tailoring import (
    Aggregate,
    AttributeVariable,
    EnrollmentVariable,
    WindowedVariable,
)


@dataclass(frozen=True)
class ProtocolWarning:
    path: str
    message: str


# Every hour and weekday: the checker's two samples of each suffice to type-check, not to
# say that a condition about the time never holds.
_EVERY_HOUR = list(range(24))
_EVERY_WEEKDAY = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


def protocol_warnings(protocol: Protocol) -> list[ProtocolWarning]:
    checker = decision_scope(protocol)
    scope = Scope(
        samples={**checker.samples, "local_hour": _EVERY_HOUR, "weekday": _EVERY_WEEKDAY},
        attributes=checker.attributes,
    )
    return [
        *_variables_without_default(protocol),
        *_unavailable_on_enrollment_day(protocol, scope),
        *_rules_that_cannot_fire(protocol, scope),
        *_pushes_beyond_the_cap(protocol),
        *_fatigue_response_without_effect(protocol),
        *_non_response_windows_overlap(protocol),
    ]


def _variables_without_default(protocol: Protocol) -> list[ProtocolWarning]:
    found = []
    for i, variable in enumerate(protocol.tailoring_variables):
        if variable.default is not None:
            continue
        if isinstance(variable, WindowedVariable) and variable.aggregate is not Aggregate.count:
            why = "while a participant has no data in its window (e.g. before the first answer)"
        elif isinstance(variable, AttributeVariable):
            spec = protocol.participant_attributes.get(variable.attribute)
            if spec is None or spec.required:
                continue
            why = f"for participants without the optional attribute '{variable.attribute}'"
        else:
            continue  # counts and the study day always have a value
        found.append(
            ProtocolWarning(
                path_of("tailoring_variables", i, "default"),
                f"'{variable.name}' has no default: {why}, every decision point is "
                "unavailable, whichever rules use it; give a default if that is not meant",
            )
        )
    return found


def _unavailable_on_enrollment_day(protocol: Protocol, scope: Scope) -> list[ProtocolWarning]:
    day_variables = [
        v.name for v in protocol.tailoring_variables if isinstance(v, EnrollmentVariable)
    ]
    if not day_variables:
        return []
    first_day = Scope(
        samples={**scope.samples, **{name: [0] for name in day_variables}},
        attributes=scope.attributes,
    )
    found = []
    for i, condition in enumerate(protocol.policy.availability.conditions):
        program = compile_condition(condition)
        if not any(name in day_variables for name in program.variables()):
            continue
        if _never(condition, first_day):
            found.append(
                ProtocolWarning(
                    path_of("policy.availability.conditions", i),
                    f"false on the enrollment day ({' = '.join(day_variables)} = 0): no "
                    "decision point is available on the day a participant enrolls",
                )
            )
    return found


def _rules_that_cannot_fire(protocol: Protocol, scope: Scope) -> list[ProtocolWarning]:
    found = []
    always: str | None = None
    for i, rule in enumerate(protocol.policy.rules):
        path = path_of("policy.rules", i, "when")
        if always is not None:
            found.append(
                ProtocolWarning(
                    path,
                    f"rule '{rule.id}' can never fire: rule '{always}' before it holds for "
                    "every decision, so the rules after it are never reached",
                )
            )
            continue
        if _never(rule.when, scope):
            found.append(
                ProtocolWarning(
                    path,
                    f"rule '{rule.id}' looks like it can never fire: its condition is false "
                    "for every sampled value of the names it uses",
                )
            )
        elif _always(rule.when, scope):
            always = rule.id
    return found


def _pushes_beyond_the_cap(protocol: Protocol) -> list[ProtocolWarning]:
    limits = protocol.policy.availability
    cap, budget = limits.max_prompts_per_day, limits.max_pushes_per_day
    prompts = sum(s.moments_per_day for s in protocol.ema_schedules)
    if budget is not None:
        if prompts <= budget:
            return []
        return [
            ProtocolWarning(
                "policy.availability.max_pushes_per_day",
                f"the scheduled EMA prompts alone ({prompts} a day) exceed max_pushes_per_day "
                f"({budget}): they are always sent, so every day goes over the budget",
            )
        ]
    if cap is None:
        return []
    reminders = sum(s.moments_per_day * s.reminders.count for s in protocol.ema_schedules)
    interventions = min(cap, protocol.decision_moments_per_day)
    total = prompts + reminders + interventions
    if total <= cap:
        return []
    return [
        ProtocolWarning(
            "policy.availability.max_prompts_per_day",
            f"a participant can get {total} pushes a day ({prompts} EMA prompts, {reminders} "
            f"reminders, {interventions} interventions, besides triggered ones), but "
            f"max_prompts_per_day ({cap}) caps interventions only; max_pushes_per_day "
            "budgets all pushes",
        )
    ]


def _fatigue_response_without_effect(protocol: Protocol) -> list[ProtocolWarning]:
    """The fatigue response must change something: interventions, reminders, droppable
    prompts or a message (docs/monitoring.md)."""
    response = protocol.monitoring.fatigue.response
    if response is None:
        return []
    factor = response.prompt_budget_factor
    cap = protocol.policy.availability.max_prompts_per_day
    base = cap if cap is not None else protocol.decision_moments_per_day
    effects = [
        bool(base) and math.floor(base * factor) < base,
        any(
            math.floor(s.reminders.count * factor) < s.reminders.count
            for s in protocol.ema_schedules
        ),
        factor < 1 and any(s.droppable for s in protocol.ema_schedules),
        response.re_engagement is not None,
    ]
    if any(effects):
        return []
    return [
        ProtocolWarning(
            "monitoring.fatigue.response",
            f"the fatigue response (prompt_budget_factor {factor}) would have no effect: it "
            "scales the daily intervention cap (max_prompts_per_day, else the decision "
            "moments a day), EMA reminders and droppable EMA schedules, and none of them "
            "changes; lower the factor, mark optional schedules droppable or declare a "
            "re_engagement message",
        )
    ]


def _non_response_windows_overlap(protocol: Protocol) -> list[ProtocolWarning]:
    rule = protocol.monitoring.non_response
    if rule is None:
        return []
    first_recent_day = 7 * rule.after_weeks - rule.recent.days
    baseline_end = rule.baseline.start_day + rule.baseline.days
    if baseline_end <= first_recent_day:
        return []
    return [
        ProtocolWarning(
            "monitoring.non_response",
            f"the baseline window (study days {rule.baseline.start_day} to {baseline_end - 1}) "
            f"overlaps the recent window at the first evaluation (week {rule.after_weeks}, "
            f"days {max(first_recent_day, 0)} on): the first flags compare a window with "
            "itself; raise after_weeks or shorten a window",
        )
    ]


def _results(expr: str, scope: Scope) -> Sequence[Any]:
    program = compile_condition(expr)
    names = [n for n in program.variables() if n in scope.samples]
    results = []
    for context in sample_contexts(names, scope):
        try:
            results.append(program.execute(context))
        except Exception:
            results.append(None)
    return results


def _never(expr: str, scope: Scope) -> bool:
    return not any(result is True for result in _results(expr, scope))


def _always(expr: str, scope: Scope) -> bool:
    return all(result is True for result in _results(expr, scope))
