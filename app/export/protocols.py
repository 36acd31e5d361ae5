"""The protocol versions an export covers (all of the study's, or the filtered one)."""

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.export.columns import Filters
from app.protocols.models import ProtocolVersion
from app.studies.models import Study


def covered_versions(session: Session, study: Study, filters: Filters) -> Sequence[ProtocolVersion]:
    """Oldest first."""
    stmt = sa.select(ProtocolVersion).where(ProtocolVersion.study_id == study.id)
    if filters.protocol_version is not None:
        stmt = stmt.where(ProtocolVersion.version == filters.protocol_version)
    return session.scalars(stmt.order_by(ProtocolVersion.version)).all()
