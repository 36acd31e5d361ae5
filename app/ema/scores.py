"""Questionnaire scores (``questionnaires[].scores``), computed from a response's answers
when it is accepted and stored as answers under the score's id, so that everything that
reads an item (tailoring variables, proximal outcomes, monitoring, exports) reads a score
the same way.

A score's items are numeric (ratings, durations). Reverse-coded items count as
min + max - answer. With fewer answered items than ``min_answered`` (default: all) the score
is missing (no row); otherwise a sum is prorated to all items (for a weighted sum, to all
the weight: sum * total weight / answered weight) and a mean is the mean of those answered.
"""

import math
from collections.abc import Mapping
from typing import Any

from app.protocols.questionnaires import (
    DurationItem,
    NumericRatingItem,
    Questionnaire,
    Score,
    ScoreMethod,
)


def score_values(questionnaire: Questionnaire, answers: Mapping[str, Any]) -> dict[str, float]:
    """The questionnaire's scores for one response's answers (missing ones left out)."""
    found = {}
    for score in questionnaire.scores:
        value = score_value(questionnaire, score, answers)
        if value is not None:
            found[score.id] = value
    return found


def score_value(
    questionnaire: Questionnaire, score: Score, answers: Mapping[str, Any]
) -> float | None:
    weighted = score.method is ScoreMethod.weighted_sum
    total_weight = answered_weight = total = 0.0
    answered = 0
    for item_id in score.items:
        weight = (score.weights or {}).get(item_id, 1.0) if weighted else 1.0
        total_weight += abs(weight)
        answer = answers.get(item_id)
        recoded = score.recode.get(item_id)
        value = recoded.get(answer) if recoded and isinstance(answer, str) else _number(answer)
        if value is None:
            continue
        if item_id in score.reverse:
            item = questionnaire.find_item(item_id)
            if isinstance(item, NumericRatingItem):
                value = item.min + item.max - value
            elif isinstance(item, DurationItem):
                value = item.min_minutes + item.max_minutes - value
        total += weight * value
        answered_weight += abs(weight)
        answered += 1
    if answered == 0 or answered < (score.min_answered or len(score.items)):
        return None
    if score.method is ScoreMethod.mean:
        return total / answered
    return total * total_weight / answered_weight if answered_weight else None


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None
