"""Semantic checks of tailoring variables, CEL expressions and message placeholders.

Each expression is checked in the scope it will be evaluated in (see docs/protocols.md):
decision expressions see tailoring variables and built-ins, contraindications see only
`attributes`, escalations see only `value`.
"""

import string
from collections.abc import Mapping, Sequence
from typing import Any

from app.protocols.attributes import (
    AttributeSpec,
    BooleanAttribute,
    ChoiceAttribute,
    MultiChoiceAttribute,
    NumberAttribute,
)
from app.protocols.cel_rules import (
    BUILTIN_VARIABLES,
    RESERVED_WORDS,
    TYPE_NAMES,
    Scope,
    check_expression,
    suggestion,
)
from app.protocols.document import Protocol
from app.protocols.problems import Problems, path_of
from app.protocols.questionnaires import (
    DurationItem,
    Item,
    MultipleChoiceItem,
    NumericRatingItem,
    SingleChoiceItem,
    YesNoItem,
)
from app.protocols.tailoring import (
    TailoringVariable,
    ValueType,
    WindowedVariable,
)
from app.protocols.tailoring_sources import source_of

# Whole and decimal samples on both sides of typical thresholds, so comparisons take both
# branches and arithmetic that mixes int and double fails during the check, not in a study.
SAMPLES: Mapping[ValueType, tuple[Any, ...]] = {
    ValueType.boolean: (True, False),
    ValueType.integer: (0, 3, 7, 100_000),
    ValueType.number: (0, 7, 2.5, 8.5, 100_000, 100_000.5),
    ValueType.string: ("", "x"),
    ValueType.string_list: ([], ["x"]),
}


def check_expressions(protocol: Protocol, problems: Problems) -> None:
    types = _check_variables(protocol, problems)
    decision_scope = _decision_scope(protocol, types)
    attributes_only = _attribute_scope(protocol, decision_scope)

    for i, condition in enumerate(protocol.policy.availability.conditions):
        _check(condition, decision_scope, path_of("policy.availability.conditions", i), problems)
    for i, rule in enumerate(protocol.policy.rules):
        _check(rule.when, decision_scope, path_of("policy.rules", i, "when"), problems)
    if protocol.smart is not None:
        responder_scope = _responder_scope(decision_scope)
        for i, stage in enumerate(protocol.smart.stages):
            if stage.responder_when is not None:
                path = path_of("smart.stages", i, "responder_when")
                _check(stage.responder_when, responder_scope, path, problems)
    for i, option in enumerate(protocol.intervention_options):
        base = path_of("intervention_options", i)
        if option.contraindicated_when is not None:
            path = path_of(base, "contraindicated_when")
            _check(option.contraindicated_when, attributes_only, path, problems)
        for field in ("title", "body"):
            template = getattr(option, field)
            if template is not None:
                _check_placeholders(template, types, path_of(base, field), problems)
    for i, questionnaire in enumerate(protocol.questionnaires):
        for j, item in enumerate(questionnaire.items):
            if item.enable_when is not None:
                path = path_of("questionnaires", i, "items", j, "enable_when")
                scope = _branching_scope(questionnaire.items, j, decision_scope)
                _check(item.enable_when, scope, path, problems)
            if item.escalation is not None:
                path = path_of("questionnaires", i, "items", j, "escalation", "when")
                _check(
                    item.escalation.when, _escalation_scope(item, decision_scope), path, problems
                )


def _check(expr: str, scope: Scope, path: str, problems: Problems) -> None:
    for message in check_expression(expr, scope):
        problems.add(path, message)


# --- tailoring variables ---------------------------------------------------------------


def _check_variables(protocol: Protocol, problems: Problems) -> dict[str, ValueType]:
    """Check each variable against its source; return name -> declared type."""
    types: dict[str, ValueType] = {}
    for name in protocol.participant_attributes:
        if name in RESERVED_WORDS:
            problems.add(
                path_of("participant_attributes", name),
                f"'{name}' is a reserved word in CEL; choose another name",
            )
    for i, variable in enumerate(protocol.tailoring_variables):
        base = path_of("tailoring_variables", i)
        name_problem = _name_problem(variable.name)
        if name_problem:
            problems.add(path_of(base, "name"), name_problem)
        types.setdefault(variable.name, variable.type)
        if isinstance(variable, WindowedVariable) and (variable.window is None) == (
            variable.baseline_days is None
        ):
            problems.add(base, "give exactly one of window and baseline_days")
        actual, reason = source_of(variable).yields(protocol, variable, base, problems)
        if actual is not None and not _fits(variable.type, actual):
            problems.add(
                path_of(base, "type"),
                f"declared {variable.type.value}, but {reason} gives {actual.value}",
            )
        if variable.default is not None and not _value_fits(variable.type, variable.default):
            problems.add(
                path_of(base, "default"),
                f"default {variable.default!r} is not a {variable.type.value}",
            )
    return types


def _name_problem(name: str) -> str | None:
    if name in BUILTIN_VARIABLES:
        return f"'{name}' is a built-in variable; choose another name"
    if name in RESERVED_WORDS or name in TYPE_NAMES:
        return f"'{name}' is a reserved word in CEL; choose another name"
    return None


def _fits(declared: ValueType, actual: ValueType) -> bool:
    return declared == actual or (declared, actual) == (ValueType.number, ValueType.integer)


def _value_fits(declared: ValueType, value: Any) -> bool:
    if declared is ValueType.boolean:
        return isinstance(value, bool)
    if isinstance(value, bool):
        return False
    if declared is ValueType.integer:
        return isinstance(value, int)
    if declared is ValueType.number:
        return isinstance(value, int | float)
    if declared is ValueType.string:
        return isinstance(value, str)
    return isinstance(value, tuple | list) and all(isinstance(v, str) for v in value)


# --- scopes -----------------------------------------------------------------------------


def _variable_samples(protocol: Protocol, variable: TailoringVariable) -> tuple[Any, ...]:
    """Samples of the declared type; choice-valued variables use their real choices."""
    if variable.type is ValueType.string:
        choices = source_of(variable).choices(protocol, variable)
        if choices:
            return tuple(choices)
    if variable.type is ValueType.string_list:
        choices = source_of(variable).choices(protocol, variable)
        if choices:
            return ([], [choices[0]], list(choices))
    if variable.type is ValueType.integer:
        return SAMPLES[ValueType.integer]
    return SAMPLES[variable.type]


def attribute_maps(attributes: Mapping[str, AttributeSpec]) -> list[dict[str, Any]]:
    """Sample `attributes` maps: every attribute present (two value sets) and with the
    optional ones absent, as they are for participants who did not provide them."""
    maps = []
    for variant in range(4):
        present: dict[str, Any] = {}
        for name, spec in attributes.items():
            present[name] = _attribute_sample(spec, variant)
        maps.append(present)
    for variant in range(2):
        maps.append({k: v for k, v in maps[variant].items() if attributes[k].required})
    return maps


def _attribute_sample(spec: AttributeSpec, variant: int) -> Any:
    if isinstance(spec, BooleanAttribute):
        return variant % 2 == 0
    if isinstance(spec, NumberAttribute):
        return (0, 100_000.5, 100_000, 2.5)[variant]
    if isinstance(spec, ChoiceAttribute):
        return spec.choices[variant % len(spec.choices)] if spec.choices else ""
    if isinstance(spec, MultiChoiceAttribute):
        return list(spec.choices[: variant % 3])
    return ("", "x")[variant % 2]


def decision_scope(protocol: Protocol) -> Scope:
    """The names decision expressions see, each with sample values (for checks and
    warnings that evaluate expressions over them)."""
    return _decision_scope(protocol, {v.name: v.type for v in protocol.tailoring_variables})


def _decision_scope(protocol: Protocol, types: Mapping[str, ValueType]) -> Scope:
    samples: dict[str, Sequence[Any]] = {}
    for variable in protocol.tailoring_variables:
        samples.setdefault(variable.name, _variable_samples(protocol, variable))
    smart = protocol.smart
    pai = protocol.personalization.pai
    samples.update(
        {
            "attributes": attribute_maps(protocol.participant_attributes),
            "stage": [s.id for s in smart.stages] if smart else [""],
            "track": ["", *smart.tracks] if smart else [""],
            "phase": [p.id for p in protocol.phases.steps] if protocol.phases else [""],
            "decision_point": [d.id for d in protocol.decision_points],
            "weekday": ["mon", "sat"],
            "local_hour": [8, 21],
            "pai_recommendation": ["", *pai.treatments] if pai else [""],
        }
    )
    required = {name: spec.required for name, spec in protocol.participant_attributes.items()}
    return Scope(samples=samples, attributes=required)


def _attribute_scope(protocol: Protocol, decision: Scope) -> Scope:
    hint = (
        "contraindications may only use participant attributes (attributes.<name>), because "
        "they must hold for the whole study"
    )
    return Scope(
        samples={"attributes": decision.samples["attributes"]},
        out_of_scope={name: hint for name in decision.samples if name != "attributes"},
        attributes=decision.attributes,
    )


def _responder_scope(decision: Scope) -> Scope:
    hint = "responder criteria are evaluated at the end of a stage, not at a decision point"
    moment = ("decision_point", "weekday", "local_hour")
    clinical = "the treatment phase is a clinician's choice; SMART responder criteria do not see it"
    return Scope(
        samples={k: v for k, v in decision.samples.items() if k not in (*moment, "phase")},
        out_of_scope={**dict.fromkeys(moment, hint), "phase": clinical},
        attributes=decision.attributes,
    )


def _escalation_scope(item: Item, decision: Scope) -> Scope:
    hint = "escalations see only `value`, the answer to this item"
    return Scope(
        samples={"value": _answer_samples(item)},
        out_of_scope=dict.fromkeys(decision.samples, hint),
    )


def _branching_scope(items: Sequence[Item], position: int, decision: Scope) -> Scope:
    """An item's enable_when sees the answers to the items before it, by id."""
    later = "enable_when sees only the answers to earlier items of the questionnaire"
    return Scope(
        samples={item.id: _answer_samples(item) for item in items[:position]},
        out_of_scope={
            **dict.fromkeys(decision.samples, later),
            **dict.fromkeys((item.id for item in items[position:]), later),
        },
    )


def _answer_samples(item: Item) -> tuple[Any, ...]:
    if isinstance(item, NumericRatingItem):
        bounds = (item.min, item.max, (item.min + item.max) / 2)
        if item.is_integer_scale:
            return tuple(int(v) for v in bounds)
        return tuple(float(v) for v in bounds)
    if isinstance(item, DurationItem):
        return (item.min_minutes, item.max_minutes)
    if isinstance(item, YesNoItem):
        return (True, False)
    if isinstance(item, SingleChoiceItem):
        return tuple(c.value for c in item.choices) or ("",)
    if isinstance(item, MultipleChoiceItem):
        values = [c.value for c in item.choices]
        return ([], values[:1], values)
    return ("", "x" * item.max_length)


# --- message placeholders ---------------------------------------------------------------


def _check_placeholders(
    template: str, types: Mapping[str, ValueType], path: str, problems: Problems
) -> None:
    try:
        fields = list(string.Formatter().parse(template))
    except ValueError as exc:
        problems.add(path, f"bad placeholder: {exc}; write literal braces as {{{{ and }}}}")
        return
    names = sorted(types)
    for _, name, spec, conversion in fields:
        if name is None:
            continue
        if name not in types:
            problems.add(
                path,
                f"placeholder {{{name}}} is not a tailoring variable{suggestion(name, names)}",
            )
            continue
        if conversion:
            problems.add(path, f"placeholder {{{name}!{conversion}}}: conversions are not allowed")
            continue
        for sample in SAMPLES[types[name]]:
            try:
                format(sample, spec or "")
            except (ValueError, TypeError) as exc:
                problems.add(path, f"placeholder {{{name}:{spec}}}: {exc}")
                break
