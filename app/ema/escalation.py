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


# An escalation's verdict on a value, for values cheap to key on (ratings, yes/no, short
# choices): a batch's answers repeat the same few values. Bounded; CEL conditions are pure.
_verdicts: dict[tuple[str, type, Any], bool] = {}
_MAX_VERDICTS = 4096
_MEMO_TEXT_LENGTH = 64


def matches(escalation: Escalation, value: Any) -> bool:
    """Whether one answer matches the escalation's condition.

    The condition was checked at protocol upload; should it still fail on some answer, the
    answer counts as matching: a needless alert is better than a missed crisis.
    """
    kind = type(value)
    key = None
    if kind is int or kind is bool or (kind is str and len(value) <= _MEMO_TEXT_LENGTH):
        key = (escalation.when, kind, value)
        found = _verdicts.get(key)
        if found is not None:
            return found
    try:
        result = evaluate_condition(compile_condition(escalation.when), {"value": value})
    except Exception:
        logger.exception("escalation condition %r failed on %r", escalation.when, value)
        return True
    if key is not None and len(_verdicts) < _MAX_VERDICTS:
        _verdicts[key] = result
    return result


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
    alerts = []
    for candidate in candidates:
        if not matches(candidate.escalation, candidate.value):
            continue
        if candidate.escalation.consecutive > 1 and not _run_matches(
            session, participant, candidate
        ):
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


def _run_matches(
    session: Session, participant: Participant, candidate: EscalationCandidate
) -> bool:
    """Whether the answers to the item just before this one (in the order they were given,
    ties broken by answer id) match too, enough of them to make the run.

    One indexed query reading at most the run's length, however many answers the
    participant has given: matches are rare, and the cost must not grow with the history.
    """
    before = candidate.escalation.consecutive - 1
    own_id = (
        sa.select(EmaAnswer.id)
        .where(
            EmaAnswer.response_id == candidate.response_id, EmaAnswer.item_id == candidate.item_id
        )
        .scalar_subquery()
    )
    values = session.scalars(
        sa.select(EmaAnswer.value)
        .where(
            EmaAnswer.participant_id == participant.id,
            EmaAnswer.item_id == candidate.item_id,
            EmaAnswer.questionnaire_id == candidate.questionnaire_id,
            # The bound the index scan starts from; the second condition breaks ties.
            EmaAnswer.answered_at <= candidate.answered_at,
            sa.or_(EmaAnswer.answered_at < candidate.answered_at, EmaAnswer.id < own_id),
        )
        .order_by(EmaAnswer.answered_at.desc(), EmaAnswer.id.desc())
        .limit(before)
    ).all()
    return len(values) == before and all(matches(candidate.escalation, v) for v in values)
