"""Participants through the study: created (with the active protocol version and the PAI
scored at onboarding), enrolled with the app, moved between statuses, their time zone or
attributes changed; each re-plans the schedule where it must."""

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from app.audit.service import Actor, record
from app.core.clock import Clock
from app.core.errors import ConflictError
from app.decision_rules.onboarding import onboard, score_at_enrollment
from app.participants import enrollment
from app.participants.enrollment import issue_enrollment_code, supersede_live_codes
from app.participants.models import Participant, ParticipantStatus, ParticipantStatusChange
from app.participants.service import ensure_code_free, generate_code
from app.participants.status import set_status, transition_problem
from app.scheduling.planning import replan
from app.studies.models import Study, StudyStatus
from app.study_operations.protocol_versions import assign_active_version


def create_participant(
    session: Session,
    clock: Clock,
    actor: Actor,
    study: Study,
    *,
    timezone: str,
    secret_key: str,
    code_ttl_hours: int,
    code: str | None = None,
    attributes: dict[str, Any] | None = None,
    participant_id: uuid.UUID | None = None,
) -> tuple[Participant, str, datetime]:
    """Create an invited participant; returns it, its one-time enrollment code and expiry."""
    if study.status == StudyStatus.closed:
        raise ConflictError("the study is closed to new participants", code="study_closed")
    if code is None:
        code = generate_code()
    ensure_code_free(session, study, code)
    now = clock.now()
    participant = Participant(
        # The simulator names its participants from its seed, so their draws repeat.
        **({"id": participant_id} if participant_id is not None else {}),
        study_id=study.id,
        code=code,
        timezone=timezone,
        status=ParticipantStatus.invited,
        status_changed_at=now,
        attributes=attributes or {},
        created_at=now,
        updated_at=now,
    )
    session.add(participant)
    session.flush()
    assign_active_version(session, clock, participant)
    # Attributes are checked against the protocol the participant follows, and the PAI
    # (when the protocol declares one) is scored now, at onboarding.
    onboard(session, clock, participant, reason="created")
    session.add(
        ParticipantStatusChange(
            participant_id=participant.id,
            from_status=None,
            to_status=participant.status,
            reason="created",
            changed_by=actor.label,
            changed_at=now,
        )
    )
    record(
        session,
        clock,
        actor,
        "participant.create",
        resource_type="participant",
        resource_id=participant.id,
        study_id=study.id,
        detail={"code": code},
    )
    code_, expires_at = issue_enrollment_code(
        session, clock, participant, secret_key=secret_key, ttl_hours=code_ttl_hours
    )
    return participant, code_, expires_at


def update_participant(
    session: Session, clock: Clock, actor: Actor, participant: Participant, changes: dict[str, Any]
) -> Participant:
    if "code" in changes and changes["code"] != participant.code:
        study = session.get_one(Study, participant.study_id)
        ensure_code_free(session, study, changes["code"])
    _apply(session, clock, participant, changes)
    if "attributes" in changes:
        onboard(session, clock, participant, reason="attributes_updated")
    # Attribute values may be sensitive (e.g. trauma history): log which, not what.
    record(
        session,
        clock,
        actor,
        "participant.update",
        resource_type="participant",
        resource_id=participant.id,
        study_id=participant.study_id,
        detail={"fields": sorted(changes)},
    )
    return participant


def change_status(
    session: Session,
    clock: Clock,
    actor: Actor,
    participant: Participant,
    target: ParticipantStatus,
    reason: str,
) -> Participant:
    problem = transition_problem(participant.status, target)
    if problem is not None:
        raise ConflictError(problem, field="status", code="status_transition_not_allowed")
    set_status(session, clock, actor, participant, target, reason)
    replan(session, clock.now(), participant, f"participant {target}: {reason}")
    if target in (ParticipantStatus.withdrawn, ParticipantStatus.completed):
        supersede_live_codes(session, clock, participant)
    record(
        session,
        clock,
        actor,
        "participant.status_change",
        resource_type="participant",
        resource_id=participant.id,
        study_id=participant.study_id,
        detail={"to": str(target), "reason": reason},
    )
    return participant


def update_own_record(
    session: Session, clock: Clock, participant: Participant, changes: dict[str, Any]
) -> Participant:
    """The app reports changes to its participant's record (a new time zone after travel)."""
    _apply(session, clock, participant, changes)
    return participant


def enroll(
    session: Session, clock: Clock, code: str, *, secret_key: str
) -> tuple[Participant, str]:
    """Exchange a one-time enrollment code for a participant token; the first enrollment
    starts the participant's schedule and scores what is scored at enrollment."""
    participant, token, first = enrollment.redeem_code(session, clock, code, secret_key=secret_key)
    if first:
        replan(session, clock.now(), participant, "enrolled")
        score_at_enrollment(session, clock, participant)
    return participant, token


def _apply(
    session: Session, clock: Clock, participant: Participant, changes: dict[str, Any]
) -> None:
    """Write the changes; a new time zone moves the schedule to the new local times."""
    moved = "timezone" in changes and changes["timezone"] != participant.timezone
    for field, value in changes.items():
        setattr(participant, field, value)
    participant.updated_at = clock.now()
    if moved:
        replan(session, clock.now(), participant, f"time zone changed to {participant.timezone}")
