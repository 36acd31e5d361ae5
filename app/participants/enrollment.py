"""Enrollment codes (one-time, expiring) and the participant tokens they are exchanged for."""

from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.audit.service import Actor
from app.core.clock import Clock
from app.core.errors import ConflictError, GoneError, NotFoundError
from app.core.secrets import (
    hash_enrollment_code,
    hash_token,
    new_enrollment_code,
    new_participant_token,
)
from app.participants.models import (
    EnrollmentCode,
    Participant,
    ParticipantStatus,
    ParticipantToken,
)
from app.participants.status import ENROLLABLE, set_status
from app.studies.models import Study, StudyStatus

# Writing last_used_at on every request would turn every read into a write.
_LAST_USED_RESOLUTION = timedelta(minutes=5)


def supersede_live_codes(session: Session, clock: Clock, participant: Participant) -> None:
    session.execute(
        sa.update(EnrollmentCode)
        .where(
            EnrollmentCode.participant_id == participant.id,
            EnrollmentCode.used_at.is_(None),
            EnrollmentCode.superseded_at.is_(None),
        )
        .values(superseded_at=clock.now())
    )


def issue_enrollment_code(
    session: Session, clock: Clock, participant: Participant, *, secret_key: str, ttl_hours: int
) -> tuple[str, datetime]:
    """A new one-time code and its expiry; any earlier unused code stops working."""
    if participant.status not in ENROLLABLE:
        raise ConflictError(
            f"a {participant.status} participant cannot enroll", code="participant_not_enrollable"
        )
    supersede_live_codes(session, clock, participant)
    now = clock.now()
    code = new_enrollment_code()
    expires_at = now + timedelta(hours=ttl_hours)
    session.add(
        EnrollmentCode(
            participant_id=participant.id,
            code_hash=hash_enrollment_code(code, secret_key),
            created_at=now,
            expires_at=expires_at,
        )
    )
    return code, expires_at


def redeem_code(
    session: Session, clock: Clock, code: str, *, secret_key: str
) -> tuple[Participant, str, bool]:
    """Exchange a one-time enrollment code for a participant token; also whether this was
    the participant's first enrollment (then invited, now active)."""
    row = session.scalar(
        sa.select(EnrollmentCode)
        .where(EnrollmentCode.code_hash == hash_enrollment_code(code, secret_key))
        .with_for_update()
    )
    now = clock.now()
    if row is None:
        raise NotFoundError(
            "this enrollment code is not known; check it for typos or ask the study team "
            "for a new one",
            field="code",
            code="enrollment_code_unknown",
        )
    if row.used_at is not None:
        raise GoneError(
            "this enrollment code has already been used; ask the study team for a new one",
            field="code",
            code="enrollment_code_used",
        )
    if row.superseded_at is not None:
        raise GoneError(
            "this enrollment code was replaced by a newer one; use the latest code you received",
            field="code",
            code="enrollment_code_superseded",
        )
    if row.expires_at <= now:
        raise GoneError(
            f"this enrollment code expired at {row.expires_at.isoformat()}; ask the study "
            "team for a new one",
            field="code",
            code="enrollment_code_expired",
        )
    participant = session.get_one(Participant, row.participant_id)
    study = session.get_one(Study, participant.study_id)
    if study.status == StudyStatus.closed:
        raise GoneError("the study is closed", field="code", code="study_closed")
    if participant.status not in ENROLLABLE:
        raise GoneError(
            f"the participant is {participant.status} and can no longer enroll",
            field="code",
            code="participant_not_enrollable",
        )
    # Guarded update: of two phones racing with the same code, exactly one wins.
    claimed = session.execute(
        sa.update(EnrollmentCode)
        .where(EnrollmentCode.id == row.id, EnrollmentCode.used_at.is_(None))
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        raise GoneError(
            "this enrollment code has already been used; ask the study team for a new one",
            field="code",
            code="enrollment_code_used",
        )
    first = participant.status == ParticipantStatus.invited
    if first:
        set_status(
            session,
            clock,
            Actor("participant", str(participant.id)),
            participant,
            ParticipantStatus.active,
            "enrolled with the app",
        )
        participant.enrolled_at = now
    token = new_participant_token()
    session.add(
        ParticipantToken(
            participant_id=participant.id, token_hash=hash_token(token), created_at=now
        )
    )
    return participant, token, first


# One round trip for both, and built once (with its cache key): this runs on every call
# the app makes.
_TOKEN_AND_PARTICIPANT = (
    sa.select(ParticipantToken, Participant)
    .join(Participant, Participant.id == ParticipantToken.participant_id)
    .where(ParticipantToken.token_hash == sa.bindparam("token_hash"))
)


def authenticate_token(
    session: Session, clock: Clock, token: str
) -> tuple[Participant, ParticipantToken] | None:
    """The participant a live token belongs to, or None for unknown or revoked tokens."""
    found = session.execute(_TOKEN_AND_PARTICIPANT, {"token_hash": hash_token(token)}).first()
    if found is None:
        return None
    row, participant = found
    if row.revoked_at is not None:
        return None
    now = clock.now()
    if row.last_used_at is None or now - row.last_used_at >= _LAST_USED_RESOLUTION:
        row.last_used_at = now
    return participant, row


def revoke_token(clock: Clock, token: ParticipantToken) -> None:
    token.revoked_at = clock.now()


def revoke_all_tokens(session: Session, clock: Clock, participant: Participant) -> int:
    result = session.execute(
        sa.update(ParticipantToken)
        .where(
            ParticipantToken.participant_id == participant.id,
            ParticipantToken.revoked_at.is_(None),
        )
        .values(revoked_at=clock.now())
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]
