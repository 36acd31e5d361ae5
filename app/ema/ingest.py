"""Accepting a batch of EMA responses from the phone.

Each response is checked against its questionnaire in the participant's protocol, stored
once per client id (a replayed batch changes nothing), marked late when it answers an
expired prompt, and may raise escalation alerts. Accepted responses publish
``ema_submitted`` in the same transaction. The work is done in a few set-based statements,
whatever the size of the batch (tests/test_ingest_statements.py holds it to that).
"""

import functools
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from pydantic_core import to_json
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
from app.core.events import ParticipantEvent, publish_all
from app.core.ids import new_id, new_id_hexes
from app.ema.answers import check_answers, numeric_value, numeric_values
from app.ema.escalation import EscalationCandidate, raise_escalations
from app.ema.models import EmaAnswer, EmaResponse
from app.ema.questionnaire_lookup import QuestionnaireLookup
from app.ema.scores import score_values
from app.ema.strata import apply_strata
from app.notifications.outbox import safety_response_notification, write_outbox
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

    @property
    def answered_at(self) -> datetime:
        return _utc(self.submission.answered_at)


def submit_responses(
    session: Session,
    clock: Clock,
    participant: Participant,
    submissions: Sequence[EmaSubmission],
    *,
    skew: timedelta,
    webhook_configured: bool,
) -> EmaBatchOutcome:
    """Judge and store a batch; the caller commits. Results come back in index order.

    The usual batch (new client ids, all valid) takes one statement on PostgreSQL: the
    responses (``INSERT … ON CONFLICT DO NOTHING RETURNING``, which also detects client ids
    stored before) with the answers of those inserted; two elsewhere. Only a batch with
    rejected items or skipped inserts looks up which of its client ids are stored, and is
    then judged again knowing them.
    """
    now = clock.now()
    prompts = _prompts(session, participant, {s.prompt_id for s in submissions if s.prompt_id})
    judge = _BatchJudge(
        TimeBounds.for_participant(participant, now, skew),
        QuestionnaireLookup(session, participant),
        prompts,
    )
    verdict = judge.run(submissions, existing={})
    stored = _insert_responses(session, participant, now, verdict.accepted)
    existing = _existing_ids(session, participant, _unsure(verdict, stored))
    if existing:
        verdict, stored = _rejudge(
            session, participant, now, judge, submissions, verdict, existing, stored
        )
    _settle_races(session, participant, verdict, stored)
    kept = verdict.accepted
    for a in kept:
        if a.prompt is not None:
            a.prompt.answered_at = _utc(a.submission.answered_at)
            a.prompt.updated_at = now
    apply_strata(session, clock, participant, kept)
    candidates = _candidates(kept)
    alerts = raise_escalations(
        session, clock, participant, candidates, webhook_configured=webhook_configured
    )
    publish_all(session, clock, [_submitted(participant, a) for a in kept])
    results = [verdict.results[s.index] for s in submissions]
    if alerts:
        _safety_responses(session, clock, participant, results, candidates, alerts)
    return EmaBatchOutcome(results, alerts)


def _safety_responses(
    session: Session,
    clock: Clock,
    participant: Participant,
    results: list[ItemResult],
    candidates: list[EscalationCandidate],
    alerts: list[Alert],
) -> None:
    """The declared safety response of each raised alert, on its response's result (the app
    shows it at once, without waiting for anybody to read the alert) and as a push in the
    outbox, in this transaction (for a phone that sent the answer and closed the app)."""
    raised = {(a.response_id, a.questionnaire_id, a.item_id): a for a in alerts}
    by_response = {r.id: r for r in results if r.id is not None}
    pushes = []
    for c in candidates:
        response = c.escalation.safety_response
        alert = raised.get((c.response_id, c.questionnaire_id, c.item_id))
        if response is None or alert is None or c.response_id not in by_response:
            continue
        already = by_response[c.response_id].safety_response is not None
        by_response[c.response_id].safety_response = {"text": response.text, "link": response.link}
        if already:  # one push per answered questionnaire, however many items alerted
            continue
        pushes.append(
            safety_response_notification(
                participant_id=participant.id,
                study_id=participant.study_id,
                alert_id=alert.id,
                text=response.text,
                link=response.link,
                now=clock.now(),
            )
        )
    if pushes:
        write_outbox(session, pushes)


@dataclass
class _Verdict:
    """Every item's result, and the accepted items (to store) in batch order."""

    results: dict[int, ItemResult]
    accepted: list[_Accepted]


@dataclass
class _BatchJudge:
    """Judges a batch in order: a stored client id is a duplicate, a client id repeated in
    the batch is a duplicate of its first accepted item, a prompt is answered only once."""

    bounds: TimeBounds
    lookup: QuestionnaireLookup
    prompts: dict[uuid.UUID, ScheduledItem]

    def run(
        self,
        submissions: Sequence[EmaSubmission],
        *,
        existing: dict[str, uuid.UUID],
        ids: dict[int, uuid.UUID] | None = None,
    ) -> _Verdict:
        """``ids``: the ids already given to accepted items (by index), to keep them."""
        results: dict[int, ItemResult] = {}
        accepted: dict[str, _Accepted] = {}
        answered_prompts: set[uuid.UUID] = set()
        for sub in submissions:
            if sub.client_id in existing:
                results[sub.index] = _duplicate(sub, existing[sub.client_id])
                continue
            if sub.client_id in accepted:
                results[sub.index] = _duplicate(sub, accepted[sub.client_id].id)
                continue
            outcome = _judge(sub, self.bounds, self.lookup, self.prompts, answered_prompts)
            if isinstance(outcome, list):
                results[sub.index] = rejected(sub.index, sub.client_id, outcome)
                continue
            if ids and sub.index in ids:
                outcome.id = ids[sub.index]
            accepted[sub.client_id] = outcome
            results[sub.index] = _accepted_result(outcome)
            if outcome.prompt is not None:
                answered_prompts.add(outcome.prompt.id)
        return _Verdict(results, list(accepted.values()))


def _unsure(verdict: _Verdict, stored: set[uuid.UUID]) -> list[str]:
    """Client ids that may be stored already: a skipped insert is one, and a rejected item
    may replay a response stored earlier (a replayed answer to a prompt is now "already
    answered"), which makes it a duplicate, whatever the first judgement said."""
    ours = {a.submission.client_id for a in verdict.accepted if a.id in stored}
    rejected_ids = [
        r.client_id
        for r in verdict.results.values()
        if r.status is ItemStatus.rejected and r.client_id is not None
    ]
    skipped = [a.submission.client_id for a in verdict.accepted if a.id not in stored]
    # A rejected item may share its client id with an accepted one we just inserted.
    return [c for c in rejected_ids if c not in ours] + skipped


def _rejudge(
    session: Session,
    participant: Participant,
    now: datetime,
    judge: _BatchJudge,
    submissions: Sequence[EmaSubmission],
    first: _Verdict,
    existing: dict[str, uuid.UUID],
    stored: set[uuid.UUID],
) -> tuple[_Verdict, set[uuid.UUID]]:
    """The batch judged knowing which of its client ids were stored before it, and the
    stored rows brought in line with that verdict.

    A stored client id claims no prompt, so an item rejected the first time for a prompt
    already answered in the batch may now be accepted (it is inserted here). Very rarely,
    an item earlier in the batch with the same client id as one inserted now comes first:
    the inserted row is deleted again, and its answers with it (ON DELETE CASCADE; it has
    no events yet).
    """
    verdict = judge.run(
        submissions, existing=existing, ids={a.submission.index: a.id for a in first.accepted}
    )
    superseded = stored - {a.id for a in verdict.accepted}
    if superseded:
        session.execute(sa.delete(EmaResponse).where(EmaResponse.id.in_(superseded)))
    missing = [a for a in verdict.accepted if a.id not in stored]
    return verdict, (stored - superseded) | _insert_responses(session, participant, now, missing)


def _settle_races(
    session: Session, participant: Participant, verdict: _Verdict, stored: set[uuid.UUID]
) -> None:
    """Accepted items whose insert was skipped: another request stored the same client ids
    after we looked; they are duplicates of what it stored."""
    raced = [a for a in verdict.accepted if a.id not in stored]
    if not raced:
        return
    ids = _existing_ids(session, participant, [a.submission.client_id for a in raced])
    for a in raced:
        verdict.results[a.submission.index] = _duplicate(a.submission, ids[a.submission.client_id])
    verdict.accepted = [a for a in verdict.accepted if a.id in stored]


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
            _prompts_statement(), {"participant_id": participant.id, "prompt_ids": chunk}
        )
        prompts.update({row.id: row for row in rows})
    return prompts


@functools.cache
def _prompts_statement() -> sa.Select[ScheduledItem]:
    # Built once: every answer to a prompt runs it.
    return sa.select(ScheduledItem).where(
        ScheduledItem.participant_id == sa.bindparam("participant_id"),
        ScheduledItem.id.in_(sa.bindparam("prompt_ids", expanding=True)),
    )


def _insert_responses(
    session: Session, participant: Participant, now: datetime, accepted: list[_Accepted]
) -> set[uuid.UUID]:
    """Insert the responses whose client ids are new, and the answers of those inserted;
    returns the ids inserted."""
    if not accepted:
        return set()
    if session.get_bind().dialect.name == "postgresql":
        return _insert_with_answers(session, participant, now, accepted)
    # In key order, so concurrent batches lock rows in the same order.
    ordered = sorted(accepted, key=lambda a: a.submission.client_id)
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
        for a in ordered
    ]
    stored = insert_new(session, EmaResponse, rows, ["participant_id", "client_id"])
    _insert_answers(session, participant, [a for a in accepted if a.id in stored])
    return stored


# PostgreSQL: the responses and the answers of those inserted, in one statement of a fixed
# shape (cached by SQLAlchemy and psycopg, prepared by the server), whatever the batch size.
# The rows travel as two JSON documents: far less work for the driver than one bind
# parameter per value (an executemany of the answers, a multi-row VALUES of the responses),
# encoded by pydantic-core (a quarter of the json module's CPU).
# The responses go in in client id order, so concurrent batches lock rows in the same
# order. The answers take their response's questionnaire and time from the rows inserted,
# so a response skipped by ON CONFLICT stores no answers.
_INSERT_WITH_ANSWERS = sa.text(
    """
WITH inserted AS (
    INSERT INTO ema_responses (
        id, participant_id, study_id, client_id, prompt_id, questionnaire_id,
        questionnaire_version, protocol_version, answered_at, utc_offset_minutes,
        received_at, late
    )
    SELECT r.id, CAST(:participant_id AS uuid), CAST(:study_id AS uuid), r.client_id,
        r.prompt_id, r.questionnaire_id, r.questionnaire_version, r.protocol_version,
        r.answered_at, r.utc_offset_minutes, CAST(:received_at AS timestamptz), r.late
    FROM json_to_recordset(CAST(:responses AS json)) AS r(
        id uuid, client_id varchar, prompt_id uuid, questionnaire_id varchar,
        questionnaire_version integer, protocol_version integer, answered_at timestamptz,
        utc_offset_minutes integer, late boolean
    )
    ORDER BY r.client_id
    ON CONFLICT (participant_id, client_id) DO NOTHING
    RETURNING id, questionnaire_id, answered_at
), answers AS (
    INSERT INTO ema_answers (
        id, response_id, participant_id, questionnaire_id, item_id, answered_at, value,
        numeric_value
    )
    SELECT a.id, inserted.id, CAST(:participant_id AS uuid), inserted.questionnaire_id,
        a.item_id, inserted.answered_at, a.value, a.numeric_value
    FROM json_to_recordset(CAST(:answers AS json)) AS a(
        id uuid, response_id uuid, item_id varchar, value jsonb, numeric_value float8
    )
    JOIN inserted ON inserted.id = a.response_id
)
SELECT id FROM inserted
"""
)


def _insert_with_answers(
    session: Session, participant: Participant, now: datetime, accepted: list[_Accepted]
) -> set[uuid.UUID]:
    responses = []
    answers = []
    # Increasing, handed out in batch order: answers given at the same instant count in the
    # order they were sent (app.ema.escalation breaks such ties by answer id).
    scores = [score_values(a.questionnaire, a.answers) for a in accepted]
    answer_ids = iter(new_id_hexes(sum(len(a.answers) for a in accepted) + sum(map(len, scores))))
    for a, scored in zip(accepted, scores, strict=True):
        sub = a.submission
        response_id = str(a.id)
        responses.append(
            {
                "id": response_id,
                "client_id": sub.client_id,
                "prompt_id": str(a.prompt.id) if a.prompt else None,
                "questionnaire_id": a.questionnaire.id,
                "questionnaire_version": a.questionnaire.version,
                "protocol_version": a.protocol_version,
                # The UTC instant: PostgreSQL reads offsets up to ±15:59 only, the phone's
                # may be up to ±23:59 (the offset is kept in utc_offset_minutes).
                "answered_at": _utc(sub.answered_at).isoformat(),
                "utc_offset_minutes": _offset_minutes(sub.answered_at),
                "late": a.late,
            }
        )
        answers += [
            {
                "id": next(answer_ids),
                "response_id": response_id,
                "item_id": item_id,
                "value": value,
                "numeric_value": number,
            }
            for (item_id, value), number in zip(
                a.answers.items(), numeric_values(a.questionnaire, a.answers), strict=True
            )
        ]
        answers += [
            {
                "id": next(answer_ids),
                "response_id": response_id,
                "item_id": score_id,
                "value": value,
                "numeric_value": value,
            }
            for score_id, value in scored.items()
        ]
    params = {
        "participant_id": participant.id,
        "study_id": participant.study_id,
        "received_at": now,
        "responses": to_json(responses).decode(),
        "answers": to_json(answers).decode(),
    }
    return set(session.scalars(_INSERT_WITH_ANSWERS, params))


def _insert_answers(session: Session, participant: Participant, kept: list[_Accepted]) -> None:
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
        for a in kept
        for item_id, value in a.answers.items()
    ]
    answers += [
        {
            "id": new_id(),
            "response_id": a.id,
            "participant_id": participant.id,
            "questionnaire_id": a.questionnaire.id,
            "item_id": score_id,
            "answered_at": a.submission.answered_at,
            "value": value,
            "numeric_value": value,
        }
        for a in kept
        for score_id, value in score_values(a.questionnaire, a.answers).items()
    ]
    if answers:
        session.execute(sa.insert(sa_table(EmaAnswer)), answers)


def _accepted_result(a: _Accepted) -> ItemResult:
    return ItemResult(
        a.submission.index, a.submission.client_id, ItemStatus.accepted, id=a.id, late=a.late
    )


def _submitted(participant: Participant, a: _Accepted) -> ParticipantEvent:
    return ParticipantEvent(
        kind=Event.ema_submitted,
        participant_id=participant.id,
        study_id=participant.study_id,
        occurred_at=_utc(a.submission.answered_at),
        reference_id=a.id,
        questionnaire=a.questionnaire.id,
        prompt_id=a.prompt.id if a.prompt is not None else None,
    )


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
