"""The live decider: a batch of due decision points in, one decision-log row per item and
a delivery (or None) per item out. Plugs into the scheduler as its ``DecideBatch``.

The number of queries per batch does not grow with its size: participants, protocol
versions, SMART assignments, PAI scores, recent prompts, then one query per kind of
tailoring data (see ``tailoring``). Everything is written in the caller's transaction.
"""

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, cast
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.care.phases import phase_in, stored_phases
from app.core.bulk_inserts import insert_rows
from app.core.clock import Clock
from app.core.ids import new_id
from app.decision_rules.bounds import Bound, among, bounds_table
from app.decision_rules.calendar import start_of_local_day, study_day
from app.decision_rules.dose import DoseHistory
from app.decision_rules.dose_history import dose_histories
from app.decision_rules.evaluation import Evaluation, burden_reason, evaluate, fallback
from app.decision_rules.learning import Posterior
from app.decision_rules.models import Decision, SmartAssignment
from app.decision_rules.moment import Moment
from app.decision_rules.onboarding import latest_recommendations, score
from app.decision_rules.posteriors import current_posteriors
from app.decision_rules.push_budget import pushes_today
from app.decision_rules.record import DecisionRecord
from app.decision_rules.seeding import choose, derive_seed, uniform
from app.decision_rules.smart import SmartState, advance
from app.decision_rules.tailoring import Subject, Tailoring, compute_tailoring
from app.notifications.delivery import Delivery
from app.notifications.history import intervention_prompts
from app.participants.models import Participant, ParticipantStatus
from app.protocols.document import Protocol
from app.protocols.store import VersionKey, protocols_of_versions
from app.scheduling.models import ScheduledItem


def decision_seed(
    study_seed: int, participant_id: uuid.UUID, decision_point_id: str, index: int | str
) -> int:
    """The seed of one decision's draw: (study seed, participant, decision point, index)."""
    return derive_seed(study_seed, participant_id, decision_point_id, index)


def decision_index(item: ScheduledItem) -> int | str:
    """The decision index, or the planned time for an item without one."""
    return item.sequence if item.sequence is not None else item.due_at.isoformat()


def merge_note(item: ScheduledItem) -> str | None:
    """The decision log's note for a decision point that also stands for slots merged into
    it by a DST change (see app/scheduling/slots.py), else None."""
    merged = (item.draw or {}).get("merged")
    if not merged:
        return None
    slots = ", ".join(f"{m['slot_key']} (planned {m['local_time']})" for m in merged)
    return f"dst: also stands for {slots}, which fell on this instant after a clock change"


@dataclass
class _Burden:
    prompts_today: int = 0
    pushes_today: int = 0
    last_prompt_at: datetime | None = None
    # The burden factor in force: the protocol's response to an open fatigue episode
    # (1.0: none; app/monitoring/fatigue.py).
    budget_factor: float = 1.0
    # For the dose constraint: the rest of the day's decision points, recent availability.
    dose: DoseHistory = field(default_factory=DoseHistory)


@dataclass(frozen=True)
class _Person:
    """What deciding needs of a participant (loaded without ORM bookkeeping)."""

    id: uuid.UUID
    timezone: str
    status: ParticipantStatus
    enrolled_at: datetime | None
    attributes: dict[str, Any]
    protocol_version: int | None
    burden_factor: float


def _participants(session: Session, ids: set[uuid.UUID]) -> dict[uuid.UUID, _Person]:
    p = Participant
    rows = session.execute(
        sa.select(
            p.id,
            p.timezone,
            p.status,
            p.enrolled_at,
            p.attributes,
            p.protocol_version,
            p.burden_factor,
        ).where(among(session, p.id, ids))
    ).all()
    return {row[0]: _Person(*row) for row in rows}


@dataclass(frozen=True)
class _Batch:
    """What every decision of a batch shares."""

    session: Session
    clock: Clock
    now: datetime
    # (participant, protocol version) -> stored PAI recommendation; filled while deciding.
    pai_rows: dict[tuple[uuid.UUID, int], str]
    # The current posterior of each learning protocol version of the batch.
    posteriors: Mapping[VersionKey, Posterior]
    # Each participant's latest phase change (absent: none; the protocol's initial phase).
    phases: Mapping[uuid.UUID, str]


def decide_batch(
    session: Session, clock: Clock, items: Sequence[ScheduledItem]
) -> list[Delivery | None]:
    """Decide every item; write its decision-log row; return what to deliver (or None)."""
    if not items:
        return []
    now = clock.now()
    participant_ids = {item.participant_id for item in items}
    participants = _participants(session, participant_ids)
    protocols = protocols_of_versions(session, {(i.study_id, i.protocol_version) for i in items})
    smart_rows = _smart_assignments(session, participant_ids, protocols)
    pai_rows = (
        latest_recommendations(session, participant_ids)
        if any(p.personalization.pai for p in protocols.values())
        else {}
    )
    phases = (
        stored_phases(session, participant_ids) if any(p.phases for p in protocols.values()) else {}
    )
    batch = _Batch(session, clock, now, pai_rows, current_posteriors(session, protocols), phases)
    zones = {pid: ZoneInfo(p.timezone) for pid, p in participants.items()}
    burden = _burden(session, now, participants, zones, items, protocols)

    subjects: list[Subject] = []
    subject_of: dict[int, int] = {}
    for position, item in enumerate(items):
        protocol = protocols.get((item.study_id, item.protocol_version))
        participant = participants[item.participant_id]
        if protocol is not None:
            subject_of[position] = len(subjects)
            subjects.append(
                Subject(
                    participant_id=participant.id,
                    at=now,
                    zone=zones[participant.id],
                    enrolled_at=participant.enrolled_at,
                    attributes=participant.attributes,
                    protocol=protocol,
                )
            )
    tailorings = compute_tailoring(session, subjects)

    deliveries: list[Delivery | None] = []
    records: list[DecisionRecord] = []
    for position, item in enumerate(items):
        participant = participants[item.participant_id]
        protocol = protocols.get((item.study_id, item.protocol_version))
        tailoring = tailorings[subject_of[position]] if protocol is not None else Tailoring()
        load = burden.setdefault(participant.id, _Burden())
        record, delivery, added = _decide(
            batch,
            _Decided(item, participant, zones[participant.id], tailoring, load.budget_factor),
            protocol,
            smart_rows.setdefault(participant.id, {}),
            load,
        )
        for row in added:
            smart_rows[participant.id][row.stage_id] = row
        records.append(record)
        deliveries.append(delivery)
    _insert(session, records)
    return deliveries


_TABLE = cast(sa.Table, Decision.__table__)


def _insert(session: Session, records: Sequence[DecisionRecord]) -> None:
    """Write the batch's log rows at once (SMART assignments and PAI scores written while
    deciding are flushed first)."""
    insert_rows(session, _TABLE, [record.row() for record in records])


@dataclass(frozen=True)
class _Decided:
    """The decision point being decided, for whom, and the tailoring values it saw."""

    item: ScheduledItem
    participant: _Person
    zone: ZoneInfo
    tailoring: Tailoring
    # The burden factor in force, logged with the decision.
    burden_factor: float = 1.0


@dataclass(frozen=True)
class _Facts:
    """What is known of a decision before its policy is asked, logged with it."""

    seed: int | None = None
    study_day: int | None = None
    stage: str | None = None
    track: str | None = None
    pai_recommendation: str | None = None
    phase: str | None = None


@dataclass(frozen=True)
class _Drawn:
    draw: float | None = None
    option_id: str | None = None
    probability: float | None = None


_NOT_DRAWN = _Drawn()


def _decide(
    batch: _Batch,
    decided: _Decided,
    protocol: Protocol | None,
    smart_rows: dict[str, SmartAssignment],
    burden: _Burden,
) -> tuple[DecisionRecord, Delivery | None, list[SmartAssignment]]:
    decision_id = new_id()
    item, participant = decided.item, decided.participant
    if protocol is None:
        # No protocol, no fallback to use: nothing is delivered, and the row says why.
        missing = Evaluation(
            available=False,
            unavailable_reason="protocol version not found",
            fallback=True,
            error=f"protocol version {item.protocol_version} of the study could not be loaded",
        )
        return _log(decision_id, batch.now, decided, _Facts(), missing, _NOT_DRAWN), None, []
    now = batch.now
    reason = _status_reason(participant, protocol, now, decided.zone)
    facts, smart, error = _stage_and_pai(batch, decision_id, decided, protocol, smart_rows)
    facts = replace(facts, phase=phase_in(protocol, batch.phases.get(participant.id)))
    moment = Moment(
        decision_point=item.source_id,
        local=now.astimezone(decided.zone),
        attributes=participant.attributes,
        stage=smart.stage,
        track=smart.track,
        phase=facts.phase or "",
        pai_recommendation=facts.pai_recommendation or "",
        prompts_today=burden.prompts_today,
        last_prompt_at=burden.last_prompt_at,
        pushes_today=burden.pushes_today,
        prompt_budget_factor=burden.budget_factor,
        posterior=batch.posteriors.get((item.study_id, item.protocol_version or 0)),
        dose_history=burden.dose,
        participant=str(participant.id),
    )
    # A failure before the rules (SMART, PAI) still never overrides the participant's
    # status or the burden limits: the fallback decides only when a prompt is allowed.
    reason = reason or (burden_reason(protocol, moment) if error is not None else None)
    if reason is not None:
        unavailable = Evaluation(
            available=False, unavailable_reason=reason, fallback=error is not None, error=error
        )
        return _log(decision_id, now, decided, facts, unavailable, _NOT_DRAWN), None, smart.new
    evaluation = _evaluate(protocol, moment, decided.tailoring, error)
    assert facts.seed is not None  # noqa: S101
    evaluation, drawn, delivery = _draw(
        decision_id, facts.seed, evaluation, protocol, moment, decided.tailoring
    )
    if delivery is not None:
        # Counted against the participant's burden for the rest of the batch.
        burden.prompts_today += 1
        burden.pushes_today += 1
        burden.last_prompt_at = now
    return _log(decision_id, now, decided, facts, evaluation, drawn), delivery, smart.new


_FOLLOWED = (ParticipantStatus.active, ParticipantStatus.paused)


def _stage_and_pai(
    batch: _Batch,
    decision_id: uuid.UUID,
    decided: _Decided,
    protocol: Protocol,
    smart_rows: dict[str, SmartAssignment],
) -> tuple[_Facts, SmartState, str | None]:
    """The decision's seed and study day, its PAI recommendation and SMART stage and track
    (advancing the stage where due), and the error that stopped them, if any."""
    item, participant = decided.item, decided.participant
    seed = decision_seed(
        protocol.study.random_seed, participant.id, item.source_id, decision_index(item)
    )
    enrolled_at = participant.enrolled_at
    day = study_day(batch.now, enrolled_at, decided.zone) if enrolled_at else None
    facts = _Facts(seed=seed, study_day=day)
    smart = SmartState()
    try:
        pai = _pai_recommendation(batch.session, batch.clock, participant, protocol, batch.pai_rows)
        facts = replace(facts, pai_recommendation=pai or None)
        if protocol.smart is not None and day is not None and participant.status in _FOLLOWED:
            smart = advance(
                protocol,
                participant_id=participant.id,
                study_id=item.study_id,
                protocol_version=item.protocol_version,
                study_day=day,
                existing=smart_rows,
                tailoring=decided.tailoring,
                attributes=participant.attributes,
                pai_recommendation=pai,
                now=batch.now,
                decision_id=decision_id,
            )
            batch.session.add_all(smart.new)
            facts = replace(facts, stage=smart.stage, track=smart.track)
    except Exception as exc:
        return facts, smart, f"{type(exc).__name__}: {exc}"
    return facts, smart, None


def _evaluate(
    protocol: Protocol, moment: Moment, tailoring: Tailoring, error: str | None
) -> Evaluation:
    if error is not None:
        return fallback(protocol, moment, error)
    try:
        return evaluate(protocol, moment, tailoring)
    except Exception as exc:
        return fallback(protocol, moment, f"{type(exc).__name__}: {exc}")


def _status_reason(
    participant: _Person, protocol: Protocol, now: datetime, zone: ZoneInfo
) -> str | None:
    if participant.status is not ParticipantStatus.active:
        return f"participant is {participant.status}"
    if participant.enrolled_at is None:
        return "participant has not enrolled"
    day = study_day(now, participant.enrolled_at, zone)
    if day > protocol.study.last_day:
        return f"study period over (study day {day}, the last is {protocol.study.last_day})"
    return None


def _pai_recommendation(
    session: Session,
    clock: Clock,
    participant: _Person,
    protocol: Protocol,
    pai_rows: dict[tuple[uuid.UUID, int], str],
) -> str:
    """The stored PAI recommendation, scored now if onboarding did not (e.g. the protocol
    was activated after the participant was created)."""
    if protocol.personalization.pai is None or participant.protocol_version is None:
        return ""
    key = (participant.id, participant.protocol_version)
    recommendation = pai_rows.get(key)
    if recommendation is None:
        row = score(session, clock, participant, protocol, reason="first_decision")
        if row is None:
            return ""
        recommendation = pai_rows[key] = row.recommendation
    return recommendation


def _draw(
    decision_id: uuid.UUID,
    seed: int,
    evaluation: Evaluation,
    protocol: Protocol,
    moment: Moment,
    tailoring: Tailoring,
) -> tuple[Evaluation, _Drawn, Delivery | None]:
    """Draw and render the message, falling back (with the same draw) if it cannot be."""
    if not evaluation.deliberate:
        return evaluation, _NOT_DRAWN, None
    u = uniform(seed)
    option_id: str | None = choose(evaluation.probabilities, u)
    assert option_id is not None  # noqa: S101
    try:
        delivery = _delivery(decision_id, protocol, option_id, tailoring.values)
    except Exception as exc:
        index = [o.id for o in protocol.intervention_options].index(option_id)
        error = f"intervention_options[{index}] message: {type(exc).__name__}: {exc}"
        evaluation = fallback(protocol, moment, error)
        option_id = choose(evaluation.probabilities, u) if evaluation.deliberate else None
        delivery = _safe_delivery(decision_id, protocol, option_id, tailoring.values)
    probability = evaluation.probabilities.get(option_id) if option_id else None
    return evaluation, _Drawn(u, option_id, probability), delivery


def _safe_delivery(
    decision_id: uuid.UUID, protocol: Protocol, option_id: str | None, values: Mapping[str, Any]
) -> Delivery | None:
    if option_id is None:
        return None
    try:
        return _delivery(decision_id, protocol, option_id, values)
    except Exception:
        # The fallback's own message cannot be rendered either: deliver nothing.
        return None


def _delivery(
    decision_id: uuid.UUID, protocol: Protocol, option_id: str, values: Mapping[str, Any]
) -> Delivery | None:
    option = protocol.option(option_id)
    if option.delivers_nothing:
        return None
    title, body = option.render(values)
    data = {"decision_id": str(decision_id), "option_id": option.id, "category": option.category}
    if option.exercise_id is not None:
        data["exercise_id"] = option.exercise_id
    if option.expected_duration_minutes is not None:
        data["expected_duration_minutes"] = str(option.expected_duration_minutes)
    return Delivery(
        decision_id=decision_id,
        option_id=option.id,
        title=title,
        body=body,
        deep_link=option.deep_link,
        data=data,
    )


def _log(
    decision_id: uuid.UUID,
    now: datetime,
    decided: _Decided,
    facts: _Facts,
    evaluation: Evaluation,
    drawn: _Drawn,
) -> DecisionRecord:
    item, participant, tailoring = decided.item, decided.participant, decided.tailoring
    # A DST merge note comes after the evaluation's own note.
    notes = (evaluation.note, merge_note(item))
    return DecisionRecord(
        id=decision_id,
        participant_id=participant.id,
        study_id=item.study_id,
        scheduled_item_id=item.id,
        decision_point_id=item.source_id,
        decision_index=item.sequence,
        planned_at=item.due_at,
        decided_at=now,
        local_time=now.astimezone(decided.zone).isoformat(),
        timezone=participant.timezone,
        protocol_version=item.protocol_version,
        study_day=facts.study_day,
        stage=facts.stage,
        track=facts.track,
        phase=facts.phase,
        available=evaluation.available,
        unavailable_reason=evaluation.unavailable_reason,
        tailoring=dict(tailoring.values),
        tailoring_defaulted=list(tailoring.defaulted),
        pai_recommendation=facts.pai_recommendation,
        rule_id=evaluation.rule_id,
        declared_probabilities=dict(evaluation.declared),
        excluded=dict(evaluation.excluded),
        probabilities=dict(evaluation.probabilities),
        randomized=evaluation.randomized,
        seed=facts.seed,
        draw=drawn.draw,
        option_id=drawn.option_id,
        probability=drawn.probability,
        note="; ".join(n for n in notes if n) or None,
        fallback=evaluation.fallback,
        error=evaluation.error,
        learning=evaluation.learning,
        dose=evaluation.dose,
        burden_factor=decided.burden_factor,
        created_at=now,
    )


def _smart_assignments(
    session: Session, participant_ids: set[uuid.UUID], protocols: Mapping[VersionKey, Protocol]
) -> dict[uuid.UUID, dict[str, SmartAssignment]]:
    if not any(p.smart for p in protocols.values()):
        return {}
    result: dict[uuid.UUID, dict[str, SmartAssignment]] = {}
    rows = session.scalars(
        sa.select(SmartAssignment).where(
            among(session, SmartAssignment.participant_id, participant_ids)
        )
    )
    for row in rows:
        result.setdefault(row.participant_id, {})[row.stage_id] = row
    return result


def _burden(
    session: Session,
    now: datetime,
    participants: Mapping[uuid.UUID, _Person],
    zones: Mapping[uuid.UUID, ZoneInfo],
    items: Sequence[ScheduledItem],
    protocols: Mapping[VersionKey, Protocol],
) -> dict[uuid.UUID, _Burden]:
    """Intervention prompts created today (local day) and the last one, per participant:
    one query over a bounded set (today, or the minimum gap if that reaches further); and
    all pushes today where the protocol has a push budget."""
    gaps: dict[uuid.UUID, int] = {}
    budgeted: set[uuid.UUID] = set()
    dosed: dict[uuid.UUID, int | None] = {}
    for item in items:
        protocol = protocols.get((item.study_id, item.protocol_version))
        limits = protocol.policy.availability if protocol else None
        gap = limits.min_minutes_between_prompts if limits else None
        gaps[item.participant_id] = max(gaps.get(item.participant_id, 0), gap or 0)
        if limits is not None and limits.max_pushes_per_day is not None:
            budgeted.add(item.participant_id)
        dose = protocol.policy.dose if protocol else None
        if dose is not None:
            dosed[item.participant_id] = dose.availability_window_days
    today = {pid: start_of_local_day(now, zones[pid]) for pid in participants}
    bounds = [
        Bound(index, pid, min(today[pid], now - timedelta(minutes=gaps.get(pid, 0))), now)
        for index, pid in enumerate(participants)
    ]
    keys = dict(enumerate(participants))
    rows = intervention_prompts(session, bounds_table(session, bounds))
    result = {pid: _Burden() for pid in participants}
    for k, created_at in rows:
        pid = keys[k]
        entry = result[pid]
        if created_at >= today[pid]:
            entry.prompts_today += 1
        if entry.last_prompt_at is None or created_at > entry.last_prompt_at:
            entry.last_prompt_at = created_at
    counts = pushes_today(session, {pid: zones[pid] for pid in budgeted}, now)
    for pid, count in counts.items():
        result[pid].pushes_today = count
    histories = dose_histories(session, {pid: zones[pid] for pid in dosed}, dosed, now)
    for pid, history in histories.items():
        result[pid].dose = history
    for pid, participant in participants.items():
        result[pid].budget_factor = participant.burden_factor
    return result
