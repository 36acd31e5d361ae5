"""Checking one response's answers against its questionnaire, and the numbers stored for them."""

from collections.abc import Mapping
from typing import Any

from app.core.batches import ItemProblem
from app.protocols.questionnaires import (
    DurationItem,
    Item,
    NumericRatingItem,
    Questionnaire,
    YesNoItem,
)

# Beyond 2**53 an integer has no exact float; the item checks compare as floats.
MAX_SAFE_INTEGER = 2**53


def check_answers(
    questionnaire: Questionnaire, answers: Mapping[str, Any]
) -> tuple[dict[str, Any], list[ItemProblem]]:
    """The answers as stored (skipped items left out), and every problem found.

    Unknown items, missing required items and values off an item's scale are problems.
    """
    problems = [
        ItemProblem(
            f"answers.{key}",
            f"questionnaire '{questionnaire.id}' version {questionnaire.version} has no item "
            f"'{key}'; its items are {[i.id for i in questionnaire.items]}",
        )
        for key in answers
        if questionnaire.find_item(key) is None
    ]
    stored: dict[str, Any] = {}
    for item in questionnaire.items:
        value = answers.get(item.id)
        reason = _too_large(value) or item.validate_answer(value)
        if reason is not None:
            problems.append(ItemProblem(f"answers.{item.id}", reason))
        elif value is not None:
            stored[item.id] = _normalized(item, value)
    return stored, problems


def _too_large(value: Any) -> str | None:
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_SAFE_INTEGER:
        return f"{value} is too large a number"
    return None


def _normalized(item: Item, value: Any) -> Any:
    # 7.0 on a whole-number scale is 7: CEL rules and aggregations see an int.
    if isinstance(item, NumericRatingItem) and item.is_integer_scale and isinstance(value, float):
        return int(value)
    return value


def numeric_value(item: Item, value: Any) -> float | None:
    """Ratings, durations (minutes) and yes/no (1/0) as numbers, for aggregation."""
    if isinstance(item, YesNoItem):
        return 1.0 if value else 0.0
    if isinstance(item, NumericRatingItem | DurationItem):
        return float(value)
    return None
