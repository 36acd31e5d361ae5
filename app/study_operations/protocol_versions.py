"""A study's protocol versions as a coordinator runs them: upload, replace while unused,
activate (for new participants or, as an amendment, for everyone), and assign to a
participant, which locks the version and re-plans the participant's schedule."""

import hashlib
import json
import uuid
from collections.abc import Sequence
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.alerts.routing import ensure_routed
from app.audit.service import Actor, record
from app.core.clock import Clock
from app.core.errors import ConflictError, InvalidInputError
from app.core.pagination import keyset_page
from app.participants.models import Participant, ParticipantStatus
from app.protocols.document import Protocol
from app.protocols.loading import ProtocolInvalid, parse_protocol
from app.protocols.models import ProtocolVersion
from app.protocols.store import get_version, load_protocol
from app.scheduling.planning import replan
from app.studies.models import Study, StudyStatus

# Participants who have left keep the version they finished on; the record must not move.
_FINISHED = (ParticipantStatus.withdrawn, ParticipantStatus.completed)


class ApplyTo(StrEnum):
    new_participants = "new_participants"
    all_participants = "all_participants"


def validate_document(source: str | bytes, *, content_type: str | None = None) -> Protocol:
    """Parse and validate, turning every problem into a 422 field error."""
    try:
        return parse_protocol(source, content_type=content_type)
    except ProtocolInvalid as exc:
        count = len(exc.problems)
        raise InvalidInputError(
            f"the protocol has {count} problem{'s' if count != 1 else ''}; "
            "each is listed under `errors` with its path in the document",
            code="protocol_invalid",
            field_errors=[(p.path, p.message) for p in exc.problems],
        ) from exc


def normalize(protocol: Protocol) -> tuple[dict[str, Any], str]:
    """The document as stored (defaults filled in) and its content hash."""
    document = protocol.model_dump(mode="json")
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"))
    return document, hashlib.sha256(canonical.encode()).hexdigest()


def _as_text(source: str | bytes) -> str:
    return source.decode("utf-8", errors="replace") if isinstance(source, bytes) else source


def active_version(session: Session, study: Study) -> ProtocolVersion | None:
    if study.active_protocol_version is None:
        return None
    return get_version(session, study.id, study.active_protocol_version)


def list_versions(
    session: Session, study: Study, *, after: uuid.UUID | None, limit: int
) -> tuple[Sequence[ProtocolVersion], uuid.UUID | None]:
    stmt = sa.select(ProtocolVersion).where(ProtocolVersion.study_id == study.id)
    return keyset_page(session, stmt, ProtocolVersion.id, after=after, limit=limit)


def upload_version(
    session: Session,
    clock: Clock,
    actor: Actor,
    study: Study,
    source: str | bytes,
    *,
    content_type: str | None = None,
    note: str = "",
    activate: bool = False,
    apply_to: "ApplyTo | None" = None,
) -> ProtocolVersion:
    """Store a validated document as the study's next version.

    The first version of a study becomes its active version; later ones only when asked,
    for new participants unless ``apply_to`` says all.
    """
    protocol = validate_document(source, content_type=content_type)
    document, content_hash = normalize(protocol)
    # Lock the study row so concurrent uploads number their versions one after another.
    session.execute(sa.select(Study.id).where(Study.id == study.id).with_for_update())
    latest = session.scalar(
        sa.select(sa.func.max(ProtocolVersion.version)).where(ProtocolVersion.study_id == study.id)
    )
    now = clock.now()
    row = ProtocolVersion(
        study_id=study.id,
        version=(latest or 0) + 1,
        document=document,
        source=_as_text(source),
        content_hash=content_hash,
        note=note,
        created_at=now,
        created_by=actor.label,
        updated_at=now,
        locked_at=None,
    )
    session.add(row)
    session.flush()
    record(
        session,
        clock,
        actor,
        "protocol.upload",
        resource_type="protocol_version",
        resource_id=row.id,
        study_id=study.id,
        detail={"version": row.version, "content_hash": content_hash},
    )
    if activate or study.active_protocol_version is None:
        activate_version(
            session, clock, actor, study, row, apply_to=apply_to or ApplyTo.new_participants
        )
    return row


def replace_version(
    session: Session,
    clock: Clock,
    actor: Actor,
    study: Study,
    row: ProtocolVersion,
    source: str | bytes,
    *,
    content_type: str | None = None,
    note: str | None = None,
) -> ProtocolVersion:
    """Edit a version that no participant has used yet; a used one is immutable."""
    if row.locked_at is not None:
        raise ConflictError(
            f"protocol version {row.version} has been used by participants since "
            f"{row.locked_at.isoformat()} and can no longer change; upload a new version",
            code="protocol_version_locked",
        )
    protocol = validate_document(source, content_type=content_type)
    row.document, row.content_hash = normalize(protocol)
    row.source = _as_text(source)
    if note is not None:
        row.note = note
    row.updated_at = clock.now()
    record(
        session,
        clock,
        actor,
        "protocol.replace",
        resource_type="protocol_version",
        resource_id=row.id,
        study_id=study.id,
        detail={"version": row.version, "content_hash": row.content_hash},
    )
    return row


def activate_version(
    session: Session,
    clock: Clock,
    actor: Actor,
    study: Study,
    row: ProtocolVersion,
    *,
    apply_to: ApplyTo,
) -> int:
    """Make ``row`` the version new participants get; returns how many participants moved.

    With ``all_participants`` (a protocol amendment) every participant still in the study
    moves to it too; withdrawn and completed participants keep the version they had.
    """
    if study.status == StudyStatus.active:
        # A running study must not start raising alerts that nobody is sent.
        ensure_routed(session, study, load_protocol(row))
    study.active_protocol_version = row.version
    study.updated_at = clock.now()
    moved = 0
    if apply_to is ApplyTo.all_participants:
        participants = session.scalars(
            sa.select(Participant).where(
                Participant.study_id == study.id,
                Participant.status.not_in(_FINISHED),
                sa.or_(
                    Participant.protocol_version.is_(None),
                    Participant.protocol_version != row.version,
                ),
            )
        ).all()
        for participant in participants:
            assign_version(session, clock, participant, row)
        moved = len(participants)
    record(
        session,
        clock,
        actor,
        "protocol.activate",
        resource_type="protocol_version",
        resource_id=row.id,
        study_id=study.id,
        detail={"version": row.version, "apply_to": str(apply_to), "participants_moved": moved},
    )
    return moved


def assign_version(
    session: Session, clock: Clock, participant: Participant, row: ProtocolVersion
) -> None:
    """Put a participant on a version; from then on that version is immutable."""
    changed = participant.protocol_version != row.version
    participant.protocol_version = row.version
    participant.updated_at = clock.now()
    if row.locked_at is None:
        row.locked_at = clock.now()
    if changed and participant.enrolled_at is not None:
        replan(session, clock.now(), participant, f"protocol version {row.version}")


def assign_active_version(session: Session, clock: Clock, participant: Participant) -> None:
    """Give a participant who has no version yet the study's active one, if there is one."""
    if participant.protocol_version is not None:
        return
    study = session.get_one(Study, participant.study_id)
    row = active_version(session, study)
    if row is not None:
        assign_version(session, clock, participant, row)
