"""Tailoring sources on the protocol side: what each ``source:`` yields, checked at upload.

One entry per source: the CEL type its variables yield (so a declared type that does not
fit is an upload problem) and the choices a choice-valued variable can take (so rules are
checked against real values). The database side is ``app.decision_rules.sources``; a test
holds the two registries and the ``TailoringVariable`` union equal, so a new source cannot
be half-added.
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from app.protocols.attributes import ChoiceAttribute, MultiChoiceAttribute
from app.protocols.cel_rules import suggestion
from app.protocols.content_checks import item_of, item_reference_problem
from app.protocols.document import Protocol
from app.protocols.problems import Problems, path_of
from app.protocols.questionnaires import (
    DurationItem,
    FreeTextItem,
    Item,
    MultipleChoiceItem,
    NumericRatingItem,
    SingleChoiceItem,
    YesNoItem,
)
from app.protocols.tailoring import (
    INTEGER_METRICS,
    Aggregate,
    AttributeVariable,
    EmaVariable,
    TailoringVariable,
    ValueType,
    WearableVariable,
)

ATTRIBUTE_TYPES: Mapping[str, ValueType] = {
    "boolean": ValueType.boolean,
    "number": ValueType.number,
    "choice": ValueType.string,
    "multi_choice": ValueType.string_list,
    "text": ValueType.string,
}

NUMERIC_AGGREGATES = frozenset({Aggregate.mean, Aggregate.sum, Aggregate.min, Aggregate.max})

# (the type the source yields, or None when it cannot be known; how to describe it)
Yield = tuple[ValueType | None, str]


class UnknownTailoringSourceError(LookupError):
    """A variable names a source that has no entry (a source added only halfway)."""


@dataclass(frozen=True)
class TailoringSource:
    # The type a variable of this source yields; reports unknown references to problems.
    yields: Callable[[Protocol, Any, str, Problems], Yield]
    # The values a choice-valued variable can take ([] when not choice-valued).
    choices: Callable[[Protocol, Any], list[str]]


def _no_choices(protocol: Protocol, variable: Any) -> list[str]:
    return []


def _ema_yields(protocol: Protocol, variable: EmaVariable, base: str, problems: Problems) -> Yield:
    item = item_of(protocol, variable.item)
    missing = item_reference_problem(protocol, variable.item)
    if missing is not None or item is None:
        problems.add(path_of(base, "item"), missing or "unknown item")
        return None, ""
    return _item_yields(item, variable, base, problems)


def _item_yields(item: Item, variable: EmaVariable, base: str, problems: Problems) -> Yield:
    agg = variable.aggregate
    reason = f"{agg.value} of {item.type} item '{variable.item}'"
    if agg is Aggregate.count:
        return ValueType.integer, reason
    if isinstance(item, NumericRatingItem | DurationItem):
        if agg is Aggregate.mean:
            return ValueType.number, reason
        whole = isinstance(item, DurationItem) or item.is_integer_scale
        return (ValueType.integer if whole else ValueType.number), reason
    if agg in NUMERIC_AGGREGATES:
        problems.add(
            path_of(base, "aggregate"),
            f"{agg.value} needs a numeric_rating or duration item, but '{variable.item}' is "
            f"{item.type}; use latest or count",
        )
        return None, reason
    if isinstance(item, YesNoItem):
        return ValueType.boolean, reason
    if isinstance(item, MultipleChoiceItem):
        return ValueType.string_list, reason
    assert isinstance(item, SingleChoiceItem | FreeTextItem)  # noqa: S101 - exhaustive union
    return ValueType.string, reason


def _ema_choices(protocol: Protocol, variable: EmaVariable) -> list[str]:
    item = item_of(protocol, variable.item)
    if isinstance(item, SingleChoiceItem | MultipleChoiceItem):
        return [c.value for c in item.choices]
    return []


def _wearable_yields(
    protocol: Protocol, variable: WearableVariable, base: str, problems: Problems
) -> Yield:
    agg = variable.aggregate
    reason = f"{agg.value} of {variable.metric.value}"
    if agg is Aggregate.count:
        return ValueType.integer, reason
    if agg is Aggregate.mean or variable.metric not in INTEGER_METRICS:
        return ValueType.number, reason
    return ValueType.integer, reason


def _count_yields(protocol: Protocol, variable: Any, base: str, problems: Problems) -> Yield:
    return ValueType.integer, f"source {variable.source}"


def _attribute_yields(
    protocol: Protocol, variable: AttributeVariable, base: str, problems: Problems
) -> Yield:
    spec = protocol.participant_attributes.get(variable.attribute)
    if spec is None:
        names = sorted(protocol.participant_attributes)
        problems.add(
            path_of(base, "attribute"),
            f"unknown participant attribute '{variable.attribute}'"
            f"{suggestion(variable.attribute, names)}",
        )
        return None, ""
    return ATTRIBUTE_TYPES[spec.type], f"attribute '{variable.attribute}' ({spec.type})"


def _attribute_choices(protocol: Protocol, variable: AttributeVariable) -> list[str]:
    spec = protocol.participant_attributes.get(variable.attribute)
    if isinstance(spec, ChoiceAttribute | MultiChoiceAttribute):
        return list(spec.choices)
    return []


TAILORING_SOURCES: Mapping[str, TailoringSource] = {
    "ema": TailoringSource(_ema_yields, _ema_choices),
    "wearable": TailoringSource(_wearable_yields, _no_choices),
    "notifications": TailoringSource(_count_yields, _no_choices),
    "enrollment": TailoringSource(_count_yields, _no_choices),
    "attribute": TailoringSource(_attribute_yields, _attribute_choices),
}


def source_of(variable: TailoringVariable) -> TailoringSource:
    try:
        return TAILORING_SOURCES[variable.source]
    except KeyError:
        raise UnknownTailoringSourceError(variable.source) from None
