"""Care-team flags: non-response, treatment fatigue, unreachable. Evaluated hourly.

A flag is raised once and stays until the evaluation finds its condition gone (resolved);
staff acknowledge it with a note meanwhile. One unresolved flag per participant and kind.
"""

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.alerts.sends import Notice, next_level, send_notice
from app.audit.service import Actor, record
from app.core.batches import chunks
from app.core.clock import Clock
from app.core.errors import ConflictError, InvalidInputError, NotFoundError
from app.ema.models import EmaResponse
from app.engagement.models import EngagementEvent
from app.monitoring.fatigue import (
    Counts,
    assess,
    daily_series,
    end_fatigue_episode,
    re_engagement_notification,
    study_day_index,
)
from app.monitoring.models import CareFlag, FlagKind, FlagResolution
from app.monitoring.non_response import non_response_of
from app.notifications.models import Device, Notification, NotificationStatus
from app.notifications.outbox import NotificationValues, write_outbox
from app.participants.models import Participant, ParticipantStatus, ParticipantToken
from app.protocols.document import Protocol
from app.protocols.store import get_version, load_protocol, protocol_of_version
from app.sensing.models import WearableSummary
from app.studies.models import Study


def _fatigue(
    protocol: Protocol,
    series: Mapping[str, Sequence[Counts]] | None,
    episode: "_Episode",
) -> dict[str, Any] | None:
    """The fatigue flag's detail while an episode should be open: a new decline, or an
    open episode that has not recovered (hysteresis); None otherwise."""
    rule = protocol.monitoring.fatigue
    if series is None:
        return None
    found = assess(rule, series, opened_day=episode.opened_day, from_day=episode.from_day)
    if episode.opened_day is not None:
        if found is not None and found.recovered:
            return None
        return found.detail(rule) if found is not None else {"day": None}
    if found is None or not found.declined:
        return None
    return found.detail(rule)


@dataclass(frozen=True)
class _Episode:
    """A participant's fatigue episode, in study days: the open one's first day, and the
    first day a new one's windows may start (after the care team last ended one)."""

    opened_day: int | None = None
    from_day: int = 0


def _episodes(session: Session, participants: Sequence[Participant]) -> dict[uuid.UUID, _Episode]:
    starts = {p.id: p.enrolled_at for p in participants if p.enrolled_at is not None}
    opened: dict[uuid.UUID, int] = {}
    ended: dict[uuid.UUID, int] = {}
    for ids in chunks(list(starts)):
        rows = session.execute(
            sa.select(CareFlag.participant_id, CareFlag.raised_at, CareFlag.resolved_at).where(
                CareFlag.participant_id.in_(ids),
                CareFlag.kind == FlagKind.fatigue,
                sa.or_(
                    CareFlag.resolved_at.is_(None),
                    CareFlag.resolution == FlagResolution.ended_by_care_team,
                ),
            )
        )
        for pid, raised_at, resolved_at in rows:
            start = starts[pid]
            if resolved_at is None:
                opened[pid] = study_day_index(start, raised_at)
            else:
                ended[pid] = max(ended.get(pid, 0), study_day_index(start, resolved_at) + 1)
    return {pid: _Episode(opened_day=opened.get(pid), from_day=ended.get(pid, 0)) for pid in starts}


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
    non_response = non_response_of(session, participants, protocols, now)
    series = daily_series(session, participants, now)
    episodes = _episodes(session, participants)
    unreachable = _unreachable_of(session, protocols, participants, now)
    return {
        p.id: {
            FlagKind.non_response: non_response[p.id],
            FlagKind.fatigue: _fatigue(
                protocols[p.id], series.get(p.id), episodes.get(p.id, _Episode())
            ),
            FlagKind.unreachable: unreachable[p.id],
        }
        for p in participants
    }


def evaluate_study(session: Session, clock: Clock, study: Study) -> list[CareFlag]:
    """Raise and resolve every active participant's flags; returns the newly raised ones.

    The study's row is locked first (``FOR UPDATE`` on PostgreSQL), so that two workers
    evaluating at once take turns: the second sees the flags the first raised, and a
    fatigue episode's re-engagement message is written once."""
    now = clock.now()
    session.execute(sa.select(Study.id).where(Study.id == study.id).with_for_update())
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
    outbox: list[NotificationValues] = []
    for participant in evaluated:
        protocol = protocols[participant.id]
        for kind, detail in findings[participant.id].items():
            existing = unresolved.get((participant.id, kind))
            if detail is None and existing is not None:
                existing.resolved_at, existing.resolution = now, FlagResolution.condition_gone
                unresolved.pop((participant.id, kind))
            elif detail is not None and existing is None:
                flag = CareFlag(
                    participant_id=participant.id,
                    study_id=study.id,
                    kind=kind,
                    detail=detail,
                    raised_at=now,
                )
                response = protocol.monitoring.fatigue.response
                if kind == FlagKind.fatigue and response and response.re_engagement:
                    # Once per episode: written with the flag that opens it.
                    message = re_engagement_notification(
                        participant, protocol, response.re_engagement, now
                    )
                    outbox.append(message)
                    flag.detail = {**detail, "re_engagement_notification_id": str(message["id"])}
                session.add(flag)
                unresolved[(participant.id, kind)] = flag
                raised.append(flag)
        _sync_burden_factor(participant, protocol, (participant.id, FlagKind.fatigue) in unresolved)
    session.flush()
    write_outbox(session, outbox)
    codes = {p.id: p.code for p in evaluated}
    for flag in raised:
        _send_flag(session, clock, study, codes.get(flag.participant_id, ""), flag)
    return raised


# Flags go to the lowest level of the routes that take this severity (a route without
# severities takes every one); unlike crisis alerts they are not escalated by themselves:
# a flag that needs a decision makes a review due, and an overdue review is escalated.
FLAG_SEVERITY = "medium"


def _send_flag(session: Session, clock: Clock, study: Study, code: str, flag: CareFlag) -> None:
    """The durable sends telling the care team of a new flag (none without routes)."""
    level = next_level(session, study.id, FLAG_SEVERITY, -1)
    if level is None:
        return
    subject = f"[Kairos flag] {study.slug}: {flag.kind} for participant {code}"
    body = (
        f"A {flag.kind} flag was raised for participant {code} in study {study.slug} at "
        f"{flag.raised_at.isoformat()}.\n\n"
        f"See it in Kairos: GET /v1/studies/{study.id}/flags?kind={flag.kind}\n"
        f"Flag id: {flag.id}\n"
    )
    # The webhook carries ids and the kind, never the participant's data.
    payload = {
        "type": "kairos.flag",
        "flag_id": str(flag.id),
        "kind": flag.kind,
        "study_id": str(study.id),
        "participant_id": str(flag.participant_id),
        "participant_code": code,
        "raised_at": flag.raised_at.isoformat(),
    }
    notice = Notice(subject, body, payload, flag_id=flag.id)
    send_notice(session, clock, study.id, FLAG_SEVERITY, level, notice)


def _sync_burden_factor(participant: Participant, protocol: Protocol, fatigued: bool) -> None:
    """The factor in force follows the open episode and the protocol's response (also
    after a protocol change while one is open)."""
    response = protocol.monitoring.fatigue.response
    factor = response.prompt_budget_factor if fatigued and response is not None else 1.0
    if participant.burden_factor != factor:
        participant.burden_factor = factor


def evaluate_all(session: Session, clock: Clock) -> int:
    """Every study's flags (the worker's daily job); returns how many were raised."""
    # In id order: concurrent evaluations lock the studies in the same order.
    studies = session.scalars(sa.select(Study).order_by(Study.id))
    return sum(len(evaluate_study(session, clock, study)) for study in studies)


def prompt_budget_factor(session: Session, participant_id: uuid.UUID, protocol: Protocol) -> float:
    """The burden factor in force for the participant: the protocol's response while a
    fatigue episode is open (1.0 otherwise)."""
    if protocol.monitoring.fatigue.response is None:
        return 1.0
    return session.get_one(Participant, participant_id).burden_factor


def get_flag(session: Session, study: Study, flag_id: uuid.UUID) -> CareFlag:
    flag = session.get(CareFlag, flag_id)
    if flag is None or flag.study_id != study.id:
        raise NotFoundError(f"no flag {flag_id} in this study", code="flag_not_found")
    return flag


def acknowledge(
    session: Session,
    clock: Clock,
    actor: Actor,
    flag: CareFlag,
    note: str,
    *,
    end_response: bool = False,
) -> CareFlag:
    """Record that the care team has seen the flag; with ``end_response`` (fatigue flags
    only) the care team also ends the fatigue episode and its automatic response."""
    if end_response and flag.kind != FlagKind.fatigue:
        raise InvalidInputError(
            f"end_response applies to fatigue flags only; this flag is {flag.kind}",
            field="end_response",
            code="not_a_fatigue_flag",
        )
    if end_response and flag.resolved_at is not None:
        raise ConflictError(
            "this fatigue episode has already ended (the flag is resolved)",
            field="end_response",
            code="flag_resolved",
        )
    if end_response:
        # First: it locks the study, then the flag, in the evaluation's order.
        end_fatigue_episode(
            session, clock, actor, flag.participant_id, reason=f"acknowledged: {note}"
        )
    flag.acknowledged_at, flag.acknowledged_by, flag.note = clock.now(), actor.label, note
    record(
        session,
        clock,
        actor,
        "flag.acknowledge",
        resource_type="care_flag",
        resource_id=flag.id,
        study_id=flag.study_id,
        detail={
            "kind": flag.kind,
            "participant_id": str(flag.participant_id),
            "note": note,
            "end_response": end_response,
        },
    )
    return flag
