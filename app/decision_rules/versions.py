"""Loading the protocol versions a batch of decisions needs, once each."""

import uuid
from collections.abc import Iterable

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.core.errors import NotFoundError
from app.protocols.document import Protocol
from app.protocols.models import ProtocolVersion
from app.protocols.versions import load_protocol

VersionKey = tuple[uuid.UUID, int]


def protocols_for(session: Session, keys: Iterable[VersionKey]) -> dict[VersionKey, Protocol]:
    """The parsed protocol of each (study, version) that exists; one query."""
    wanted = set(keys)
    if not wanted:
        return {}
    rows = session.scalars(
        sa.select(ProtocolVersion).where(
            ProtocolVersion.study_id.in_({study for study, _ in wanted}),
            ProtocolVersion.version.in_({version for _, version in wanted}),
        )
    ).all()
    return {
        (row.study_id, row.version): load_protocol(row)
        for row in rows
        if (row.study_id, row.version) in wanted
    }


def protocol_for(session: Session, study_id: uuid.UUID, version: int) -> Protocol:
    found = protocols_for(session, [(study_id, version)])
    if (study_id, version) not in found:
        raise NotFoundError(
            f"study {study_id} has no protocol version {version}", code="protocol_not_found"
        )
    return found[(study_id, version)]
