"""Care-team flags: non-response, treatment fatigue, unreachable. Evaluated daily.

A flag is raised once and stays until the evaluation finds its condition gone (resolved);
staff acknowledge it with a note meanwhile. One unresolved flag per participant and kind.
"""

import uuid
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.audit.service import Actor, record
from app.core.batches import chunks
from app.core.clock import Clock
from app.core.errors import NotFoundError
from app.ema.models import EmaResponse
from app.engagement.models import EngagementEvent
from app.monitoring.models import CareFlag, FlagKind
from app.monitoring.trends import WeekFigures, weekly_figures_of
from app.notifications.models import Device, Notification, NotificationStatus
from app.participants.models import Participant, ParticipantStatus, ParticipantToken
from app.protocols.document import Protocol
from app.protocols.store import get_version, load_protocol, protocol_of_version
from app.sensing.models import WearableSummary
from app.studies.models import Study


def _non_response(protocol: Protocol, weeks: Sequence[WeekFigures]) -> dict[str, Any] | None:
    rule = protocol.monitoring.non_response
    # weeks[-1] is the current, unfinished week; the last complete one is compared.
    if rule is None or len(weeks) < 2 or weeks[-1].week < rule.after_weeks:
        return None
    baseline, recent = weeks[0].means.get(rule.item), weeks[-2].means.get(rule.item)
    if baseline is None or recent is None or baseline <= 0:
        return None
    improvement = (baseline - recent) / baseline
    if improvement >= rule.min_improvement:
        return None
    return {
        "item": rule.item,
        "baseline_mean": baseline,
        "last_week_mean": recent,
        "improvement": round(improvement, 4),
        "required_improvement": rule.min_improvement,
        "week": weeks[-1].week,
    }


def _fatigue(protocol: Protocol, weeks: Sequence[WeekFigures]) -> dict[str, Any] | None:
    rule = protocol.monitoring.fatigue
    if len(weeks) < 3:
        return None
    before, last = weeks[-3], weeks[-2]
    drops: dict[str, Any] = {}
    rates = {
        "ema_completion": (
            (before.prompts_offered, before.ema_completion),
            (last.prompts_offered, last.ema_completion),
        ),
        "engagement": (
            (before.interventions_sent, before.engagement),
            (last.interventions_sent, last.engagement),
        ),
    }
    for name, ((offered_before, previous), (offered_last, latest)) in rates.items():
        if offered_before < rule.min_prompts or offered_last < rule.min_prompts:
            continue
        if previous and latest is not None and (previous - latest) / previous >= rule.drop_fraction:
            drops[name] = {"week_before": previous, "last_week": latest}
    if not drops:
        return None
    return {"drops": drops, "drop_fraction": rule.drop_fraction}


def _latest_of(
    session: Session, column: Any, owner: Any, participant_ids: list[uuid.UUID], *where: Any
) -> dict[uuid.UUID, Any]:
    """The latest ``column`` of each participant (absent: none), one query for them all."""
    return dict(
        session.execute(
            sa.select(owner, sa.func.max(column))
            .where(owner.in_(participant_ids), *where)
            .group_by(owner)
        ).all()
    )


def _unreachable_of(
    session: Session,
    protocols: dict[uuid.UUID, Protocol],
    participants: Sequence[Participant],
    now: datetime,
) -> dict[uuid.UUID, dict[str, Any] | None]:
    """Who has had neither a delivered push nor contact from the app for the protocol's
    number of days (only those enrolled at least that long)."""
    found: dict[uuid.UUID, dict[str, Any] | None] = {p.id: None for p in participants}
    since, days = {}, {}
    for participant in participants:
        days[participant.id] = protocols[participant.id].monitoring.unreachable.days
        since[participant.id] = now - timedelta(days=days[participant.id])
    due = [p.id for p in participants if p.enrolled_at is not None and p.enrolled_at <= since[p.id]]
    for ids in chunks(due):
        last_push = _latest_of(
            session,
            Notification.sent_at,
            Notification.participant_id,
            ids,
            Notification.status == NotificationStatus.sent,
        )
        contacts = [
            _latest_of(
                session, ParticipantToken.last_used_at, ParticipantToken.participant_id, ids
            ),
            _latest_of(session, Device.last_seen_at, Device.participant_id, ids),
            _latest_of(session, EmaResponse.received_at, EmaResponse.participant_id, ids),
            _latest_of(session, WearableSummary.received_at, WearableSummary.participant_id, ids),
            _latest_of(session, EngagementEvent.received_at, EngagementEvent.participant_id, ids),
        ]
        for pid in ids:
            push = last_push.get(pid)
            contact = max((c[pid] for c in contacts if c.get(pid) is not None), default=None)
            if (push is not None and push >= since[pid]) or (
                contact is not None and contact >= since[pid]
            ):
                continue
            found[pid] = {
                "days": days[pid],
                "last_delivered_push": push.isoformat() if push else None,
                "last_app_contact": contact.isoformat() if contact else None,
            }
    return found


def evaluate_participant(
    session: Session, clock: Clock, participant: Participant, protocol: Protocol
) -> dict[FlagKind, dict[str, Any] | None]:
    """What each flag's condition finds for one participant now (None: not flagged)."""
    return _evaluate(session, clock.now(), [participant], {participant.id: protocol})[
        participant.id
    ]


def _evaluate(
    session: Session,
    now: datetime,
    participants: Sequence[Participant],
    protocols: dict[uuid.UUID, Protocol],
) -> dict[uuid.UUID, dict[FlagKind, dict[str, Any] | None]]:
    """``evaluate_participant`` of each participant, with a fixed number of queries for
    those on one protocol (the daily evaluation reads the whole study)."""
    weeks: dict[uuid.UUID, list[WeekFigures]] = {}
    by_references: dict[tuple[str, ...], list[Participant]] = defaultdict(list)
    for participant in participants:
        rule = protocols[participant.id].monitoring.non_response
        by_references[(rule.item,) if rule is not None else ()].append(participant)
    for references, group in by_references.items():
        weeks |= weekly_figures_of(session, group, references, now)
    unreachable = _unreachable_of(session, protocols, participants, now)
    return {
        p.id: {
            FlagKind.non_response: _non_response(protocols[p.id], weeks[p.id]),
            FlagKind.fatigue: _fatigue(protocols[p.id], weeks[p.id]),
            FlagKind.unreachable: unreachable[p.id],
        }
        for p in participants
    }


def evaluate_study(session: Session, clock: Clock, study: Study) -> list[CareFlag]:
    """Raise and resolve every active participant's flags; returns the newly raised ones."""
    now = clock.now()
    participants = session.scalars(
        sa.select(Participant).where(
            Participant.study_id == study.id,
            Participant.status == ParticipantStatus.active,
            Participant.protocol_version.is_not(None),
        )
    ).all()
    unresolved = {
        (f.participant_id, f.kind): f
        for f in session.scalars(
            sa.select(CareFlag).where(CareFlag.study_id == study.id, CareFlag.resolved_at.is_(None))
        )
    }
    protocols: dict[uuid.UUID, Protocol] = {}
    for participant in participants:
        version = participant.protocol_version
        if version is None:  # filtered above; keeps the type checker informed
            continue
        protocols[participant.id] = protocol_of_version(
            session, study.id, version
        ) or load_protocol(get_version(session, study.id, version))
    evaluated = [p for p in participants if p.id in protocols]
    raised = []
    findings = _evaluate(session, now, evaluated, protocols)
    for participant in evaluated:
        for kind, detail in findings[participant.id].items():
            existing = unresolved.get((participant.id, kind))
            if detail is None and existing is not None:
                existing.resolved_at = now
            elif detail is not None and existing is None:
                flag = CareFlag(
                    participant_id=participant.id,
                    study_id=study.id,
                    kind=kind,
                    detail=detail,
                    raised_at=now,
                )
                session.add(flag)
                raised.append(flag)
    return raised


def evaluate_all(session: Session, clock: Clock) -> int:
    """Every study's flags (the worker's daily job); returns how many were raised."""
    return sum(
        len(evaluate_study(session, clock, study)) for study in session.scalars(sa.select(Study))
    )


def prompt_budget_factor(session: Session, participant_id: uuid.UUID, protocol: Protocol) -> float:
    """The protocol's automatic response to fatigue: scale the daily prompt cap while an
    unresolved fatigue flag stands (1.0 otherwise)."""
    response = protocol.monitoring.fatigue.response
    if response is None:
        return 1.0
    flagged = session.scalar(
        sa.select(
            sa.exists().where(
                CareFlag.participant_id == participant_id,
                CareFlag.kind == FlagKind.fatigue,
                CareFlag.resolved_at.is_(None),
            )
        )
    )
    return response.prompt_budget_factor if flagged else 1.0


def get_flag(session: Session, study: Study, flag_id: uuid.UUID) -> CareFlag:
    flag = session.get(CareFlag, flag_id)
    if flag is None or flag.study_id != study.id:
        raise NotFoundError(f"no flag {flag_id} in this study", code="flag_not_found")
    return flag


def acknowledge(
    session: Session, clock: Clock, actor: Actor, flag: CareFlag, note: str
) -> CareFlag:
    flag.acknowledged_at, flag.acknowledged_by, flag.note = clock.now(), actor.label, note
    record(
        session,
        clock,
        actor,
        "flag.acknowledge",
        resource_type="care_flag",
        resource_id=flag.id,
        study_id=flag.study_id,
        detail={"kind": flag.kind, "participant_id": str(flag.participant_id), "note": note},
    )
    return flag
