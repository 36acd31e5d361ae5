"""Reading EMA responses back: the app's history view and staff review."""

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.core.batches import chunks
from app.core.pagination import keyset_page
from app.ema.models import EmaAnswer, EmaResponse
from app.participants.models import Participant


@dataclass(frozen=True)
class ResponseWithAnswers:
    response: EmaResponse
    answers: dict[str, Any]


def list_responses(
    session: Session,
    participant: Participant,
    *,
    after: uuid.UUID | None,
    limit: int,
    since: datetime | None = None,
    until: datetime | None = None,
    questionnaire_id: str | None = None,
) -> tuple[list[ResponseWithAnswers], uuid.UUID | None]:
    """Responses in the order they were received, with their answers (two queries a page)."""
    stmt = sa.select(EmaResponse).where(EmaResponse.participant_id == participant.id)
    if since is not None:
        stmt = stmt.where(EmaResponse.answered_at >= since)
    if until is not None:
        stmt = stmt.where(EmaResponse.answered_at < until)
    if questionnaire_id is not None:
        stmt = stmt.where(EmaResponse.questionnaire_id == questionnaire_id)
    page, next_cursor = keyset_page(session, stmt, EmaResponse.id, after=after, limit=limit)
    answers = _answers(session, page)
    return [ResponseWithAnswers(r, answers.get(r.id, {})) for r in page], next_cursor


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
