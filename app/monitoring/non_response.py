"""Non-response (therapeutic inertia): too little improvement on the measure the protocol
declares, from a baseline window to a recent window, each with enough answers.

Days are the 24 h periods since enrollment (as the weekly trends and fatigue use). The
recent window is the last ``recent.days`` complete days; the flag is evaluated from study
week ``after_weeks`` on. Improvement is relative to the baseline mean: a fall for
``lower_is_better`` measures (pain, interference), a rise for ``higher_is_better`` ones
(function, acceptance). A baseline mean of 0 or less cannot carry a relative change, and is
not evaluated.
"""

import uuid
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from app.core.batches import chunks
from app.monitoring.trends import answer_rows, matches
from app.participants.models import Participant
from app.protocols.document import Protocol
from app.protocols.monitoring import Direction, NonResponse

DAY = timedelta(days=1)


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values)


def assess_non_response(
    rule: NonResponse, by_day: dict[int, list[float]], complete_days: int
) -> dict[str, Any] | None:
    """The flag's detail, or None (responding, too early, or too little data). ``by_day``:
    the answers of the measure per study day; ``complete_days``: days 0 .. n-1 are over."""
    if complete_days // 7 < rule.after_weeks:
        return None
    first, last = rule.baseline.start_day, rule.baseline.start_day + rule.baseline.days
    recent_from = max(complete_days - rule.recent.days, 0)
    baseline = [v for d in range(first, last) for v in by_day.get(d, ())]
    recent = [v for d in range(recent_from, complete_days) for v in by_day.get(d, ())]
    if len(baseline) < rule.min_answers or len(recent) < rule.min_answers:
        return None
    baseline_mean, recent_mean = _mean(baseline), _mean(recent)
    if baseline_mean <= 0:
        return None
    change = baseline_mean - recent_mean
    if rule.direction is Direction.higher_is_better:
        change = -change
    improvement = change / baseline_mean
    if improvement >= rule.min_improvement:
        return None
    return {
        "item": rule.item,
        "direction": rule.direction.value,
        "baseline_mean": baseline_mean,
        "baseline_days": [first, last - 1],
        "baseline_answers": len(baseline),
        "recent_mean": recent_mean,
        "recent_days": [recent_from, complete_days - 1],
        "recent_answers": len(recent),
        "improvement": round(improvement, 4),
        "required_improvement": rule.min_improvement,
        "week": complete_days // 7,
    }


def non_response_of(
    session: Session,
    participants: Sequence[Participant],
    protocols: dict[uuid.UUID, Protocol],
    now: datetime,
) -> dict[uuid.UUID, dict[str, Any] | None]:
    """``assess_non_response`` of each participant whose protocol declares it (one query
    per chunk of participants)."""
    rules = {
        p.id: rule
        for p in participants
        if (rule := protocols[p.id].monitoring.non_response) is not None
        and p.enrolled_at is not None
        and now >= p.enrolled_at
    }
    found: dict[uuid.UUID, dict[str, Any] | None] = {p.id: None for p in participants}
    starts = {p.id: p.enrolled_at for p in participants if p.id in rules and p.enrolled_at}
    for ids in chunks(list(starts)):
        item_ids = {rules[pid].item.partition(".")[2] for pid in ids}
        values: dict[uuid.UUID, dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
        some = {pid: starts[pid] for pid in ids}
        for pid, questionnaire_id, item_id, answered_at, numeric in answer_rows(
            session, some, item_ids, now
        ):
            if matches(rules[pid].item, questionnaire_id, item_id):
                values[pid][int((answered_at - some[pid]) / DAY)].append(numeric)
        for pid in ids:
            complete = int((now - starts[pid]) / DAY)
            found[pid] = assess_non_response(rules[pid], values.get(pid, {}), complete)
    return found
