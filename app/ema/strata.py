"""Stratification (``questionnaires[].stratify``): an accepted response's scores set a
participant attribute, e.g. the STarT Back risk stratum at onboarding, so that rules and
care can follow it (CEL: ``attributes.start_back_risk``).

The change is written like a staff change of attributes (audited as ``participant.update``,
naming the attribute and not its value) and the PAI is scored again when the attributes fit
the protocol. Within a batch the latest answered response wins. Only responses on the
participant's current protocol version stratify.
"""

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy.orm import Session

from app.audit.service import Actor, record
from app.core.clock import Clock
from app.ema.scores import score_values
from app.participants.models import Participant
from app.protocols.questionnaires import Questionnaire

# What follows a stratification (the PAI scored again, app.decision_rules.onboarding),
# connected by app.listeners: EMA ingestion sits below the decision rules.
Restratified = Callable[[Session, Clock, Participant], None]
_AFTER_STRATIFYING: list[Restratified] = []


def on_stratified(listener: Restratified) -> None:
    """Call ``listener`` after a participant's attributes were stratified (idempotent)."""
    if listener not in _AFTER_STRATIFYING:
        _AFTER_STRATIFYING.append(listener)


class Stratified(Protocol):
    """What stratification needs of an accepted response."""

    @property
    def questionnaire(self) -> Questionnaire: ...
    @property
    def answers(self) -> dict[str, Any]: ...
    @property
    def answered_at(self) -> datetime: ...
    @property
    def protocol_version(self) -> int: ...


def stratum_updates(responses: Sequence[Stratified]) -> dict[str, str]:
    """The attribute values the responses' stratifications give (the latest response's
    value for each attribute)."""
    updates: dict[str, str] = {}
    for response in sorted(responses, key=lambda r: r.answered_at):
        stratify = response.questionnaire.stratify
        if stratify is None:
            continue
        value = stratify.value(score_values(response.questionnaire, response.answers))
        if value is not None:
            updates[stratify.attribute] = value
    return updates


def apply_strata(
    session: Session, clock: Clock, participant: Participant, responses: Sequence[Stratified]
) -> dict[str, str]:
    """Set the participant attributes the accepted responses stratify; returns those that
    changed."""
    # A response on an earlier protocol version may stratify into an attribute the
    # participant's current version no longer declares.
    current = [r for r in responses if r.protocol_version == participant.protocol_version]
    updates = stratum_updates(current)
    changed = {k: v for k, v in updates.items() if participant.attributes.get(k) != v}
    if not changed:
        return {}
    participant.attributes = {**participant.attributes, **changed}
    participant.updated_at = clock.now()
    record(
        session,
        clock,
        Actor("participant", str(participant.id)),
        "participant.update",
        resource_type="participant",
        resource_id=participant.id,
        study_id=participant.study_id,
        detail={"fields": ["attributes"], "attributes": sorted(changed), "reason": "stratified"},
    )
    for listener in _AFTER_STRATIFYING:
        listener(session, clock, participant)
    return changed
