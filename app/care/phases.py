"""Treatment phases (stepped care): a clinician moves one participant between the phases
the protocol declares; the engine restricts options and the daily cap to the phase.

Transactions: ``change_phase`` adds one ``phase_changes`` row and its audit event in the
caller's transaction (a review completed with a new phase commits both together). Rows
are never updated: the history is the table, the current phase its latest row.
"""

import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.audit.service import Actor, record
from app.care.models import PhaseChange
from app.core.clock import Clock
from app.core.errors import ConflictError, InvalidInputError
from app.participants.models import Participant
from app.protocols.document import Protocol
from app.protocols.store import get_version, load_protocol


def stored_phases(session: Session, participant_ids: Collection[uuid.UUID]) -> dict[uuid.UUID, str]:
    """The latest phase change of each participant who has one (one query)."""
    if not participant_ids:
        return {}
    latest: dict[uuid.UUID, str] = {}
    rows = session.execute(
        sa.select(PhaseChange.participant_id, PhaseChange.to_phase)
        .where(PhaseChange.participant_id.in_(list(participant_ids)))
        .order_by(PhaseChange.participant_id, PhaseChange.changed_at, PhaseChange.id)
    )
    for participant_id, to_phase in rows:
        latest[participant_id] = to_phase
    return latest


def phase_in(protocol: Protocol, stored: str | None) -> str | None:
    """The participant's phase under ``protocol``: the stored one where the protocol
    declares it, else the protocol's initial phase (None: the protocol has no phases)."""
    if protocol.phases is None:
        return None
    if stored is not None and protocol.phases.phase(stored) is not None:
        return stored
    return protocol.phases.initial_phase


def participant_protocol(session: Session, participant: Participant) -> Protocol | None:
    if participant.protocol_version is None:
        return None
    return load_protocol(get_version(session, participant.study_id, participant.protocol_version))


def current_phase(session: Session, participant: Participant) -> str | None:
    protocol = participant_protocol(session, participant)
    if protocol is None:
        return None
    return phase_in(protocol, stored_phases(session, [participant.id]).get(participant.id))


@dataclass(frozen=True)
class PhaseState:
    current: str | None
    declared: tuple[str, ...]
    history: Sequence[PhaseChange]


def phase_state(session: Session, participant: Participant) -> PhaseState:
    protocol = participant_protocol(session, participant)
    history = session.scalars(
        sa.select(PhaseChange)
        .where(PhaseChange.participant_id == participant.id)
        .order_by(PhaseChange.changed_at, PhaseChange.id)
    ).all()
    declared = tuple(p.id for p in protocol.phases.steps) if protocol and protocol.phases else ()
    stored = history[-1].to_phase if history else None
    return PhaseState(phase_in(protocol, stored) if protocol else None, declared, history)


def change_phase(
    session: Session,
    clock: Clock,
    actor: Actor,
    participant: Participant,
    to_phase: str,
    reason: str,
    *,
    review_id: uuid.UUID | None = None,
    field: str = "phase",
) -> PhaseChange:
    """Move the participant to ``to_phase`` (audited). 422 naming ``field`` for a phase the
    participant's protocol does not declare; 409 when it is already the current phase."""
    protocol = participant_protocol(session, participant)
    if protocol is None or protocol.phases is None:
        raise InvalidInputError(
            f"{field}: the participant's protocol declares no treatment phases",
            field=field,
            code="no_phases",
        )
    declared = [p.id for p in protocol.phases.steps]
    if to_phase not in declared:
        raise InvalidInputError(
            f"{field}: unknown phase '{to_phase}' (declared: {', '.join(declared)})",
            field=field,
            code="unknown_phase",
        )
    current = phase_in(protocol, stored_phases(session, [participant.id]).get(participant.id))
    if to_phase == current:
        raise ConflictError(
            f"{field}: the participant is already in phase '{to_phase}'",
            field=field,
            code="phase_unchanged",
        )
    assert current is not None  # noqa: S101 - the protocol declares phases
    change = PhaseChange(
        study_id=participant.study_id,
        participant_id=participant.id,
        from_phase=current,
        to_phase=to_phase,
        reason=reason,
        changed_at=clock.now(),
        changed_by=actor.label,
        review_id=review_id,
    )
    session.add(change)
    session.flush()
    record(
        session,
        clock,
        actor,
        "participant.phase_change",
        resource_type="participant",
        resource_id=participant.id,
        study_id=participant.study_id,
        detail={
            "from_phase": current,
            "to_phase": to_phase,
            "reason": reason,
            "review_id": str(review_id) if review_id else None,
        },
    )
    return change
