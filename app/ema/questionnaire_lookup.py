"""Which questionnaire (in which protocol version) an EMA response answers."""

from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from app.participants.models import Participant
from app.protocols.document import Protocol
from app.protocols.questionnaires import Questionnaire
from app.protocols.store import other_versions, protocol_of_version


@dataclass
class QuestionnaireLookup:
    """Finds questionnaires in the participant's protocol version first.

    A phone that was offline while the study moved the participant to a new protocol
    version may still send answers to the questionnaire version it showed; those are
    matched in the study's other versions (newest first), so they are kept, not lost.
    """

    session: Session
    participant: Participant
    _own: Protocol | None = None
    _others: list[tuple[int, Protocol]] | None = field(default=None)

    def own_protocol(self) -> Protocol | None:
        version = self.participant.protocol_version
        if self._own is None and version is not None:
            self._own = protocol_of_version(self.session, self.participant.study_id, version)
        return self._own

    def find(self, questionnaire_id: str, version: int) -> tuple[int, Questionnaire] | str:
        """(protocol version, questionnaire), or why there is none."""
        own = self.own_protocol()
        if own is None or self.participant.protocol_version is None:
            return "the participant has no protocol version yet, so there is nothing to answer"
        found = _questionnaire(own, questionnaire_id)
        if found is not None and found.version == version:
            return self.participant.protocol_version, found
        for protocol_version, protocol in self._other_versions():
            other = _questionnaire(protocol, questionnaire_id)
            if other is not None and other.version == version:
                return protocol_version, other
        if found is None:
            known = [q.id for q in own.questionnaires]
            return f"the protocol has no questionnaire '{questionnaire_id}'; it has {known}"
        return (
            f"questionnaire '{questionnaire_id}' has no version {version} in this study "
            f"(the participant's protocol has version {found.version})"
        )

    def _other_versions(self) -> list[tuple[int, Protocol]]:
        if self._others is None and self.participant.protocol_version is not None:
            self._others = other_versions(
                self.session, self.participant.study_id, self.participant.protocol_version
            )
        return self._others or []


def _questionnaire(protocol: Protocol, questionnaire_id: str) -> Questionnaire | None:
    return next((q for q in protocol.questionnaires if q.id == questionnaire_id), None)
