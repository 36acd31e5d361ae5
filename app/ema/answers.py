"""Checking one response's answers against its questionnaire, and the numbers stored for them."""

import threading
from collections.abc import Mapping
from typing import Any

from app.core.batches import ItemProblem
from app.protocols.cel_rules import compile_condition, evaluate_condition
from app.protocols.questionnaires import (
    DurationItem,
    FreeTextItem,
    Item,
    NumericRatingItem,
    Questionnaire,
    YesNoItem,
)

# Beyond 2**53 an integer has no exact float; the item checks compare as floats.
MAX_SAFE_INTEGER = 2**53

# A batch answers the same questionnaire with the same few values (ratings, choices) over
# and over: an item's verdict on a value is kept, for values that are cheap to key on, of
# items with few possible answers (not free text), up to a bound.
_VERDICTS_PER_QUESTIONNAIRE = 1024
_MEMO_TEXT_LENGTH = 64
_NOT_KEPT = object()


class _Checks:
    """A questionnaire's items by id, and verdicts already reached (item id, type, value)."""

    def __init__(self, questionnaire: Questionnaire) -> None:
        self.questionnaire = questionnaire
        self.items = questionnaire.items
        self.by_id: dict[str, Item] = {item.id: item for item in questionnaire.items}
        # Answers stored as whole numbers: 7.0 on a whole-number scale is 7.
        self.integer_scales = frozenset(
            item.id
            for item in questionnaire.items
            if isinstance(item, NumericRatingItem) and item.is_integer_scale
        )
        self.memo_items = frozenset(
            item.id for item in questionnaire.items if not isinstance(item, FreeTextItem)
        )
        self.verdicts: dict[tuple[str, type, Any], str | None] = {}

    def verdict(self, item: Item, value: Any) -> str | None:
        kind = type(value)
        if item.id in self.memo_items and (
            kind is int
            or kind is bool
            or value is None
            or (kind is str and len(value) <= _MEMO_TEXT_LENGTH)
        ):
            key = (item.id, kind, value)
            found = self.verdicts.get(key, _NOT_KEPT)
            if found is not _NOT_KEPT:
                return found  # type: ignore[return-value]
            reason = _reason(item, value)
            if len(self.verdicts) < _VERDICTS_PER_QUESTIONNAIRE:
                self.verdicts[key] = reason
            return reason
        # Floats (-0.0 and 0.0 are equal keys but print differently), lists, long texts.
        return _reason(item, value)


# By the questionnaire object (protocol versions are loaded once and kept, see
# app.protocols.store); the questionnaire is held with its checks, so its id is not
# reused while the entry lives.
_checks: dict[int, _Checks] = {}
_checks_lock = threading.Lock()
_MAX_QUESTIONNAIRES = 64


def _checks_of(questionnaire: Questionnaire) -> _Checks:
    found = _checks.get(id(questionnaire))
    if found is not None and found.questionnaire is questionnaire:
        return found
    checks = _Checks(questionnaire)
    with _checks_lock:
        if len(_checks) >= _MAX_QUESTIONNAIRES:
            _checks.clear()
        _checks[id(questionnaire)] = checks
    return checks


def check_answers(
    questionnaire: Questionnaire, answers: Mapping[str, Any]
) -> tuple[dict[str, Any], list[ItemProblem]]:
    """The answers as stored (skipped items left out), and every problem found.

    Unknown items, missing required items and values off an item's scale are problems.
    """
    checks = _checks_of(questionnaire)
    by_id = checks.by_id
    problems = [
        ItemProblem(
            f"answers.{key}",
            f"questionnaire '{questionnaire.id}' version {questionnaire.version} has no item "
            f"'{key}'; its items are {[i.id for i in questionnaire.items]}",
        )
        for key in answers
        if key not in by_id
    ]
    stored: dict[str, Any] = {}
    integer_scales = checks.integer_scales
    for item in checks.items:
        value = answers.get(item.id)
        if item.enable_when is not None and not is_enabled(item.enable_when, stored):
            if value is not None:
                problems.append(
                    ItemProblem(
                        f"answers.{item.id}",
                        f"not asked: its enable_when ({item.enable_when}) is false for this "
                        "response's earlier answers",
                    )
                )
            continue
        reason = checks.verdict(item, value)
        if reason is not None:
            problems.append(ItemProblem(f"answers.{item.id}", reason))
        elif value is not None:
            # 7.0 on a whole-number scale is 7: CEL rules and aggregations see an int.
            if isinstance(value, float) and item.id in integer_scales:
                value = int(value)
            stored[item.id] = value
    return stored, problems


def is_enabled(condition: str, earlier: Mapping[str, Any]) -> bool:
    """Whether an item with this enable_when is asked after these (stored) earlier answers.
    A condition that cannot be evaluated (it reads a skipped item) is false: the item is
    not asked."""
    try:
        return evaluate_condition(compile_condition(condition), earlier)
    except Exception:
        return False


def _reason(item: Item, value: Any) -> str | None:
    return _too_large(value) or item.validate_answer(value)


def _too_large(value: Any) -> str | None:
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_SAFE_INTEGER:
        return f"{value} is too large a number"
    return None


def numeric_value(item: Item, value: Any) -> float | None:
    """Ratings, durations (minutes) and yes/no (1/0) as numbers, for aggregation."""
    if isinstance(item, YesNoItem):
        return 1.0 if value else 0.0
    if isinstance(item, NumericRatingItem | DurationItem):
        return float(value)
    return None


def numeric_values(questionnaire: Questionnaire, answers: Mapping[str, Any]) -> list[float | None]:
    """``numeric_value`` of each stored answer (of ``check_answers``), in their order."""
    by_id = _checks_of(questionnaire).by_id
    return [numeric_value(by_id[item_id], value) for item_id, value in answers.items()]
