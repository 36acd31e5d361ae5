"""Accepting a batch of EMA responses from the phone.

Each response is checked against its questionnaire in the participant's protocol, stored
once per client id (a replayed batch changes nothing), marked late when it answers an
expired prompt, and may raise escalation alerts. Accepted responses publish
``ema_submitted`` in the same transaction. The work is done in a few set-based queries,
whatever the size of the batch.
"""

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.alerts.models import Alert
from app.core.batches import (
    ItemProblem,
    ItemResult,
    ItemStatus,
    TimeBounds,
    chunks,
    insert_new,
    rejected,
    sa_table,
)
from app.core.clock import Clock
from app.core.events import ParticipantEvent, publish
from app.core.ids import new_id
from app.ema.answers import check_answers, numeric_value
from app.ema.escalation import EscalationCandidate, raise_escalations
from app.ema.models import EmaAnswer, EmaResponse
from app.ema.questionnaire_lookup import QuestionnaireLookup
from app.participants.models import Participant
from app.protocols.questionnaires import Questionnaire
from app.protocols.timing import Event
from app.scheduling.models import ItemKind, ScheduledItem


@dataclass(frozen=True)
class EmaSubmission:
    index: int
    client_id: str
    prompt_id: uuid.UUID | None
    questionnaire_id: str
    questionnaire_version: int
    # Aware, in the phone's offset at the time (kept as utc_offset_minutes).
    answered_at: datetime
    answers: Mapping[str, Any]


@dataclass
class EmaBatchOutcome:
    results: list[ItemResult]
    alerts: list[Alert]


@dataclass
class _Accepted:
    submission: EmaSubmission
    id: uuid.UUID
    protocol_version: int
    questionnaire: Questionnaire
    answers: dict[str, Any]
    prompt: ScheduledItem | None
    late: bool


def submit_responses(
    session: Session,
    clock: Clock,
    participant: Participant,
    submissions: Sequence[EmaSubmission],
    *,
    skew: timedelta,
    webhook_configured: bool,
) -> EmaBatchOutcome:
    """Judge and store a batch; the caller commits. Results come back in index order."""
    now = clock.now()
    bounds = TimeBounds.for_participant(participant, now, skew)
    results: dict[int, ItemResult] = {}
    existing = _existing_ids(session, participant, [s.client_id for s in submissions])
    prompts = _prompts(session, participant, {s.prompt_id for s in submissions if s.prompt_id})
    lookup = QuestionnaireLookup(session, participant)
    accepted: dict[str, _Accepted] = {}
    answered_prompts: set[uuid.UUID] = set()

    for sub in submissions:
        if sub.client_id in existing:
            results[sub.index] = _duplicate(sub, existing[sub.client_id])
            continue
        if sub.client_id in accepted:
            results[sub.index] = _duplicate(sub, accepted[sub.client_id].id)
            continue
        outcome = _judge(sub, bounds, lookup, prompts, answered_prompts)
        if isinstance(outcome, list):
            results[sub.index] = rejected(sub.index, sub.client_id, outcome)
            continue
        accepted[sub.client_id] = outcome
        if outcome.prompt is not None:
            answered_prompts.add(outcome.prompt.id)

    stored = _insert(session, participant, now, list(accepted.values()))
    raced = [a for a in accepted.values() if a.submission.client_id not in stored]
    if raced:
        # Another request stored the same client ids between our check and our insert.
        ids = _existing_ids(session, participant, [a.submission.client_id for a in raced])
        for a in raced:
            results[a.submission.index] = _duplicate(a.submission, ids[a.submission.client_id])
    kept = [a for a in accepted.values() if a.submission.client_id in stored]
    for a in kept:
        results[a.submission.index] = ItemResult(
            a.submission.index, a.submission.client_id, ItemStatus.accepted, id=a.id, late=a.late
        )
        if a.prompt is not None:
            a.prompt.answered_at = _utc(a.submission.answered_at)
            a.prompt.updated_at = now
    alerts = raise_escalations(
        session, clock, participant, _candidates(kept), webhook_configured=webhook_configured
    )
    for a in kept:
        publish(
            session,
            clock,
            ParticipantEvent(
                kind=Event.ema_submitted,
                participant_id=participant.id,
                study_id=participant.study_id,
                occurred_at=_utc(a.submission.answered_at),
                reference_id=a.id,
                questionnaire=a.questionnaire.id,
            ),
        )
    return EmaBatchOutcome([results[s.index] for s in submissions], alerts)


def _judge(
    sub: EmaSubmission,
    bounds: TimeBounds,
    lookup: QuestionnaireLookup,
    prompts: dict[uuid.UUID, ScheduledItem],
    answered_prompts: set[uuid.UUID],
) -> _Accepted | list[ItemProblem]:
    problems: list[ItemProblem] = []
    time_problem = bounds.problem("answered_at", sub.answered_at)
    if time_problem is not None:
        problems.append(time_problem)
    prompt = None
    if sub.prompt_id is not None:
        prompt = prompts.get(sub.prompt_id)
        prompt_problem = _prompt_problem(sub, prompt, answered_prompts)
        if prompt_problem is not None:
            problems.append(prompt_problem)
    found = lookup.find(sub.questionnaire_id, sub.questionnaire_version)
    if isinstance(found, str):
        field = "questionnaire_id" if "no questionnaire" in found else "questionnaire_version"
        problems.append(ItemProblem(field, found))
        return problems
    protocol_version, questionnaire = found
    answers, answer_problems = check_answers(questionnaire, sub.answers)
    problems += answer_problems
    if problems:
        return problems
    late = bool(prompt and prompt.expires_at and sub.answered_at > prompt.expires_at)
    return _Accepted(sub, new_id(), protocol_version, questionnaire, answers, prompt, late)


def _prompt_problem(
    sub: EmaSubmission, prompt: ScheduledItem | None, answered_prompts: set[uuid.UUID]
) -> ItemProblem | None:
    if prompt is None or prompt.kind != ItemKind.ema_prompt:
        return ItemProblem("prompt_id", f"the participant has no EMA prompt {sub.prompt_id}")
    if prompt.questionnaire_id is not None and prompt.questionnaire_id != sub.questionnaire_id:
        return ItemProblem(
            "prompt_id",
            f"prompt {prompt.id} asked for questionnaire '{prompt.questionnaire_id}', "
            f"not '{sub.questionnaire_id}'",
        )
    if prompt.answered_at is not None or prompt.id in answered_prompts:
        when = f" at {prompt.answered_at.isoformat()}" if prompt.answered_at else ""
        return ItemProblem(
            "prompt_id",
            f"prompt {prompt.id} was already answered{when} by another response; send a "
            "self-initiated report (no prompt_id) instead",
        )
    return None


def _duplicate(sub: EmaSubmission, existing_id: uuid.UUID) -> ItemResult:
    return ItemResult(sub.index, sub.client_id, ItemStatus.duplicate, id=existing_id)


def _existing_ids(
    session: Session, participant: Participant, client_ids: list[str]
) -> dict[str, uuid.UUID]:
    found: dict[str, uuid.UUID] = {}
    for chunk in chunks(sorted(set(client_ids))):
        rows = session.execute(
            sa.select(EmaResponse.client_id, EmaResponse.id).where(
                EmaResponse.participant_id == participant.id, EmaResponse.client_id.in_(chunk)
            )
        )
        found.update({row[0]: row[1] for row in rows})
    return found


def _prompts(
    session: Session, participant: Participant, prompt_ids: set[uuid.UUID]
) -> dict[uuid.UUID, ScheduledItem]:
    prompts: dict[uuid.UUID, ScheduledItem] = {}
    for chunk in chunks(sorted(prompt_ids)):
        rows = session.scalars(
            sa.select(ScheduledItem).where(
                ScheduledItem.participant_id == participant.id, ScheduledItem.id.in_(chunk)
            )
        )
        prompts.update({row.id: row for row in rows})
    return prompts


def _insert(
    session: Session, participant: Participant, now: datetime, accepted: list[_Accepted]
) -> set[str]:
    """Insert responses and their answers; returns the client ids actually inserted."""
    if not accepted:
        return set()
    rows = [
        {
            "id": a.id,
            "participant_id": participant.id,
            "study_id": participant.study_id,
            "client_id": a.submission.client_id,
            "prompt_id": a.prompt.id if a.prompt else None,
            "questionnaire_id": a.questionnaire.id,
            "questionnaire_version": a.questionnaire.version,
            "protocol_version": a.protocol_version,
            "answered_at": a.submission.answered_at,
            "utc_offset_minutes": _offset_minutes(a.submission.answered_at),
            "received_at": now,
            "late": a.late,
        }
        # In key order, so concurrent batches lock rows in the same order.
        for a in sorted(accepted, key=lambda a: a.submission.client_id)
    ]
    stored = insert_new(session, EmaResponse, rows, ["participant_id", "client_id"])
    answers = [
        {
            "id": new_id(),
            "response_id": a.id,
            "participant_id": participant.id,
            "questionnaire_id": a.questionnaire.id,
            "item_id": item_id,
            "answered_at": a.submission.answered_at,
            "value": value,
            "numeric_value": numeric_value(a.questionnaire.item(item_id), value),
        }
        for a in accepted
        if a.id in stored
        for item_id, value in a.answers.items()
    ]
    if answers:
        session.execute(sa.insert(sa_table(EmaAnswer)), answers)
    return {a.submission.client_id for a in accepted if a.id in stored}


def _candidates(kept: list[_Accepted]) -> list[EscalationCandidate]:
    return [
        EscalationCandidate(
            response_id=a.id,
            questionnaire_id=a.questionnaire.id,
            item_id=item.id,
            escalation=item.escalation,
            value=a.answers[item.id],
            answered_at=_utc(a.submission.answered_at),
        )
        for a in kept
        for item in a.questionnaire.items
        if item.escalation is not None and item.id in a.answers
    ]


def _offset_minutes(when: datetime) -> int:
    offset = when.utcoffset()
    return int(offset.total_seconds() // 60) if offset is not None else 0


def _utc(when: datetime) -> datetime:
    return when.astimezone(UTC)
