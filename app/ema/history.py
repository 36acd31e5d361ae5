"""Reading EMA responses back: the app's history view and staff review."""

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.core.batches import chunks
from app.core.pagination import PeriodPage, history_page
from app.ema.models import EmaAnswer, EmaResponse
from app.participants.models import Participant


@dataclass(frozen=True)
class ResponseWithAnswers:
    response: EmaResponse
    answers: dict[str, Any]


def list_responses(
    session: Session,
    participant: Participant,
    page: PeriodPage,
    *,
    questionnaire_id: str | None = None,
) -> tuple[list[ResponseWithAnswers], uuid.UUID | None]:
    """Responses in the order they were received, with their answers (two queries a page);
    the page's bounds are on when they were answered."""
    r = EmaResponse
    only = [r.questionnaire_id == questionnaire_id] if questionnaire_id is not None else []
    found, next_cursor = history_page(session, r, participant.id, r.answered_at, page, *only)
    answers = _answers(session, found)
    return [ResponseWithAnswers(x, answers.get(x.id, {})) for x in found], next_cursor


def _answers(session: Session, responses: Sequence[EmaResponse]) -> dict[uuid.UUID, dict[str, Any]]:
    by_response: dict[uuid.UUID, dict[str, Any]] = {}
    for chunk in chunks([r.id for r in responses]):
        rows = session.execute(
            sa.select(EmaAnswer.response_id, EmaAnswer.item_id, EmaAnswer.value).where(
                EmaAnswer.response_id.in_(chunk)
            )
        )
        for response_id, item_id, value in rows:
            by_response.setdefault(response_id, {})[item_id] = value
    return by_response
