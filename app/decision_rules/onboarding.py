"""Onboarding (inter-patient) personalization: participant attributes checked against the
protocol's schema, and the Personalized Advantage Index scored and stored."""

import typing
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.core.clock import Clock
from app.core.errors import InvalidInputError
from app.decision_rules.bounds import among
from app.decision_rules.models import PaiScore
from app.participants.models import Participant
from app.protocols.cel_rules import suggestion
from app.protocols.document import Protocol
from app.protocols.store import require_protocol


def attribute_problems(
    protocol: Protocol, attributes: Mapping[str, Any], *, prefix: str = "attributes"
) -> list[tuple[str, str]]:
    """(field, reason) for every attribute that does not fit the protocol's schema."""
    declared = protocol.participant_attributes
    problems = []
    for name, spec in declared.items():
        reason = spec.validate_value(attributes.get(name))
        if reason is not None:
            problems.append((f"{prefix}.{name}", reason))
    for name in attributes:
        if name not in declared:
            known = ", ".join(sorted(declared)) or "none"
            problems.append(
                (
                    f"{prefix}.{name}",
                    f"not a participant attribute of this study's protocol"
                    f"{suggestion(name, sorted(declared))} (declared: {known})",
                )
            )
    return problems


def validate_attributes(protocol: Protocol, attributes: Mapping[str, Any]) -> None:
    """InvalidInputError (422) naming each attribute that does not fit."""
    problems = attribute_problems(protocol, attributes)
    if problems:
        raise InvalidInputError(
            f"{len(problems)} participant attribute{'s do' if len(problems) > 1 else ' does'} "
            "not fit the study protocol's participant_attributes",
            code="attributes_invalid",
            field_errors=problems,
        )


class Scorable(typing.Protocol):
    """What scoring needs of a participant (an ORM row or a lighter record)."""

    @property
    def id(self) -> uuid.UUID: ...
    @property
    def protocol_version(self) -> int | None: ...
    @property
    def attributes(self) -> dict[str, Any]: ...


def score(
    session: Session,
    clock: Clock,
    participant: Scorable,
    protocol: Protocol,
    *,
    reason: str,
) -> PaiScore | None:
    """Score the PAI for the participant (when the protocol declares one) and store it."""
    pai = protocol.personalization.pai
    if pai is None or participant.protocol_version is None:
        return None
    problems = attribute_problems(protocol, participant.attributes)
    if problems:
        raise ValueError(
            "the PAI cannot be scored, the participant's attributes do not fit the protocol: "
            + "; ".join(f"{field}: {reason}" for field, reason in problems)
        )
    row = PaiScore(
        participant_id=participant.id,
        protocol_version=participant.protocol_version,
        outcome=pai.outcome,
        scores=pai.predict(participant.attributes),
        recommendation=pai.recommend(participant.attributes),
        reason=reason,
        computed_at=clock.now(),
    )
    session.add(row)
    return row


def onboard(session: Session, clock: Clock, participant: Participant, *, reason: str) -> None:
    """Validate the participant's attributes against their protocol version and score the
    PAI. Without a protocol version (the study has none yet) there is nothing to check."""
    if participant.protocol_version is None:
        return
    protocol = require_protocol(session, participant.study_id, participant.protocol_version)
    validate_attributes(protocol, participant.attributes)
    score(session, clock, participant, protocol, reason=reason)


def latest_recommendations(
    session: Session, participant_ids: Iterable[uuid.UUID]
) -> dict[tuple[uuid.UUID, int], str]:
    """The latest PAI recommendation of each participant, by (participant, protocol
    version)."""
    ids = list(set(participant_ids))
    if not ids:
        return {}
    rows = session.execute(
        sa.select(PaiScore.participant_id, PaiScore.protocol_version, PaiScore.recommendation)
        .where(among(session, PaiScore.participant_id, ids))
        .order_by(PaiScore.computed_at, PaiScore.id)
    ).all()
    return {(pid, version): recommendation for pid, version, recommendation in rows}


def score_at_enrollment(session: Session, clock: Clock, participant: Participant) -> None:
    """Score the PAI at enrollment unless onboarding already did for this protocol version
    (the study may have had no protocol when the participant was created)."""
    version = participant.protocol_version
    if version is None:
        return
    protocol = require_protocol(session, participant.study_id, version)
    if protocol.personalization.pai is None:
        return
    if (participant.id, version) in latest_recommendations(session, [participant.id]):
        return
    if attribute_problems(protocol, participant.attributes):
        # Attributes set before the protocol existed may not fit it; the engine then falls
        # back (and logs why) rather than enrollment failing for the participant.
        return
    score(session, clock, participant, protocol, reason="enrolled")


def rescore_after_stratifying(session: Session, clock: Clock, participant: Participant) -> None:
    """The PAI again after a questionnaire set a stratum attribute (app.ema.strata), when
    the attributes fit the protocol; otherwise the engine falls back, as at enrollment,
    rather than the upload of the answers failing."""
    if participant.protocol_version is None:
        return
    protocol = require_protocol(session, participant.study_id, participant.protocol_version)
    if not attribute_problems(protocol, participant.attributes):
        score(session, clock, participant, protocol, reason="stratified")
