"""Reading stored protocol versions: the one reader, with the one cache of parsed documents.

A version assigned to a participant is locked and never changes again, so its parsed
document is kept for the life of the process; an unlocked one is parsed once per content
hash. Every part of Kairos that needs a study's protocol (scheduling, the decision engine,
ingestion, monitoring, exports, the API) reads it here.
"""

import uuid
from collections.abc import Iterable

import sqlalchemy as sa
from sqlalchemy.orm import Session, defer

from app.core.errors import NotFoundError
from app.protocols.document import Protocol
from app.protocols.loading import load_stored
from app.protocols.models import ProtocolVersion

VersionKey = tuple[uuid.UUID, int]

# Parsed documents by content hash: a study has a handful of versions, each parsed once.
_parsed: dict[str, Protocol] = {}
# Locked versions by (study, version): they can no longer change.
_locked: dict[VersionKey, Protocol] = {}


def load_protocol(row: ProtocolVersion) -> Protocol:
    """The document of a stored version (validated at upload; loading re-checks only its
    structure, so a check added later cannot lock a study out of its live version)."""
    protocol = _parsed.get(row.content_hash)
    if protocol is None:
        protocol = _parsed[row.content_hash] = load_stored(row.document)
    if row.locked_at is not None:
        _locked[(row.study_id, row.version)] = protocol
    return protocol


def get_version(session: Session, study_id: uuid.UUID, version: int) -> ProtocolVersion:
    """A study's stored version; NotFoundError (404) when there is none."""
    row = session.scalar(
        sa.select(ProtocolVersion).where(
            ProtocolVersion.study_id == study_id, ProtocolVersion.version == version
        )
    )
    if row is None:
        raise NotFoundError(
            f"study {study_id} has no protocol version {version}", code="protocol_not_found"
        )
    return row


def protocols_of_versions(
    session: Session, keys: Iterable[VersionKey]
) -> dict[VersionKey, Protocol]:
    """The document of each (study, version) that exists; at most one query."""
    wanted = set(keys)
    found = {key: _locked[key] for key in wanted if key in _locked}
    missing = wanted - found.keys()
    if not missing:
        return found
    rows = session.scalars(
        sa.select(ProtocolVersion)
        .options(defer(ProtocolVersion.source))  # the uploaded text is not needed
        .where(
            ProtocolVersion.study_id.in_({study for study, _ in missing}),
            ProtocolVersion.version.in_({version for _, version in missing}),
        )
    ).all()
    for row in rows:
        if (row.study_id, row.version) in missing:
            found[(row.study_id, row.version)] = load_protocol(row)
    return found


def protocol_of_version(session: Session, study_id: uuid.UUID, version: int) -> Protocol | None:
    """The document of a study's version, or None when there is no such version."""
    return protocols_of_versions(session, [(study_id, version)]).get((study_id, version))


def require_protocol(session: Session, study_id: uuid.UUID, version: int) -> Protocol:
    """The document of a study's version; NotFoundError (404) when there is none."""
    protocol = protocol_of_version(session, study_id, version)
    if protocol is None:
        raise NotFoundError(
            f"study {study_id} has no protocol version {version}", code="protocol_not_found"
        )
    return protocol


def other_versions(
    session: Session, study_id: uuid.UUID, version: int
) -> list[tuple[int, Protocol]]:
    """Every other version of the study with its document, newest first."""
    rows = session.scalars(
        sa.select(ProtocolVersion)
        .options(defer(ProtocolVersion.source))
        .where(ProtocolVersion.study_id == study_id, ProtocolVersion.version != version)
        .order_by(ProtocolVersion.version.desc())
    ).all()
    return [(row.version, load_protocol(row)) for row in rows]
