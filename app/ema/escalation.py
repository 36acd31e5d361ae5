"""Escalations: answers that the protocol says must alert the care team."""

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.alerts.models import Alert
from app.alerts.service import raise_alert
from app.core.clock import Clock
from app.ema.models import EmaAnswer
from app.participants.models import Participant
from app.protocols.cel_rules import compile_condition, evaluate_condition
from app.protocols.questionnaires import Escalation

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class EscalationCandidate:
    """A stored answer to an item that declares an escalation."""

    response_id: uuid.UUID
    questionnaire_id: str
    item_id: str
    escalation: Escalation
    value: Any
    answered_at: datetime


def matches(escalation: Escalation, value: Any) -> bool:
    """Whether one answer matches the escalation's condition.

    The condition was checked at protocol upload; should it still fail on some answer, the
    answer counts as matching: a needless alert is better than a missed crisis.
    """
    try:
        return evaluate_condition(compile_condition(escalation.when), {"value": value})
    except Exception:
        logger.exception("escalation condition %r failed on %r", escalation.when, value)
        return True


def raise_escalations(
    session: Session,
    clock: Clock,
    participant: Participant,
    candidates: list[EscalationCandidate],
    *,
    webhook_configured: bool,
) -> list[Alert]:
    """An alert for each answer whose last ``consecutive`` answers to the item all match.

    "The item" is the questionnaire's item (``evening.self_harm``); the answers counted are
    those stored, by the time the participant answered, this one included. The candidates'
    answers must already be flushed, so answers sent in the same batch count too.
    """
    matching = [c for c in candidates if matches(c.escalation, c.value)]
    histories = _histories(
        session, participant, [c for c in matching if c.escalation.consecutive > 1]
    )
    alerts = []
    for candidate in matching:
        if candidate.escalation.consecutive > 1 and not _run_matches(candidate, histories):
            continue
        alerts.append(
            raise_alert(
                session,
                clock,
                participant,
                response_id=candidate.response_id,
                questionnaire_id=candidate.questionnaire_id,
                item_id=candidate.item_id,
                escalation=candidate.escalation,
                value=candidate.value,
                answered_at=candidate.answered_at,
                webhook_configured=webhook_configured,
            )
        )
    return alerts


ItemKey = tuple[str, str]
# (answered_at, answer id, response id, value), oldest first.
History = list[tuple[datetime, uuid.UUID, uuid.UUID, Any]]


def _histories(
    session: Session, participant: Participant, candidates: list[EscalationCandidate]
) -> dict[ItemKey, History]:
    """Per item: the stored answers from N-1 before the earliest candidate to the latest.

    Two small indexed queries per item with a multi-answer escalation, however many of the
    batch's answers match.
    """
    by_item: dict[ItemKey, list[EscalationCandidate]] = {}
    for candidate in candidates:
        by_item.setdefault((candidate.questionnaire_id, candidate.item_id), []).append(candidate)
    histories = {}
    for (questionnaire_id, item_id), group in by_item.items():
        earliest = min(c.answered_at for c in group)
        latest = max(c.answered_at for c in group)
        before = max(c.escalation.consecutive for c in group) - 1
        columns = sa.select(
            EmaAnswer.answered_at, EmaAnswer.id, EmaAnswer.response_id, EmaAnswer.value
        ).where(
            EmaAnswer.participant_id == participant.id,
            EmaAnswer.item_id == item_id,
            EmaAnswer.questionnaire_id == questionnaire_id,
        )
        within = session.execute(
            columns.where(EmaAnswer.answered_at >= earliest, EmaAnswer.answered_at <= latest)
        ).all()
        earlier = session.execute(
            columns.where(EmaAnswer.answered_at < earliest)
            .order_by(EmaAnswer.answered_at.desc(), EmaAnswer.id.desc())
            .limit(before)
        ).all()
        rows = [(r[0], r[1], r[2], r[3]) for r in [*earlier, *within]]
        histories[(questionnaire_id, item_id)] = sorted(rows, key=lambda r: (r[0], r[1]))
    return histories


def _run_matches(candidate: EscalationCandidate, histories: dict[ItemKey, History]) -> bool:
    history = histories[(candidate.questionnaire_id, candidate.item_id)]
    position = next((i for i, row in enumerate(history) if row[2] == candidate.response_id), None)
    count = candidate.escalation.consecutive
    if position is None or position + 1 < count:
        return False
    run = history[position + 1 - count : position + 1]
    return all(matches(candidate.escalation, row[3]) for row in run)
