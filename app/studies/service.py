import uuid
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.audit.service import Actor, record
from app.core.clock import Clock
from app.core.errors import ConflictError, NotFoundError
from app.core.pagination import keyset_page
from app.studies.models import Study, StudyStatus


def get_study(session: Session, study_id: uuid.UUID) -> Study:
    study = session.get(Study, study_id)
    if study is None:
        raise NotFoundError(f"study {study_id} does not exist", code="study_not_found")
    return study


def list_studies(
    session: Session, *, after: uuid.UUID | None, limit: int, status: StudyStatus | None = None
) -> tuple[Sequence[Study], uuid.UUID | None]:
    stmt = sa.select(Study)
    if status is not None:
        stmt = stmt.where(Study.status == status)
    return keyset_page(session, stmt, Study.id, after=after, limit=limit)


def _ensure_slug_free(session: Session, slug: str, *, except_id: uuid.UUID | None = None) -> None:
    stmt = sa.select(Study.id).where(Study.slug == slug)
    if except_id is not None:
        stmt = stmt.where(Study.id != except_id)
    if session.scalar(stmt) is not None:
        raise ConflictError(
            f"a study with slug '{slug}' already exists", field="slug", code="slug_taken"
        )


def create_study(
    session: Session,
    clock: Clock,
    actor: Actor,
    *,
    slug: str,
    name: str,
    description: str = "",
    status: StudyStatus = StudyStatus.draft,
) -> Study:
    _ensure_slug_free(session, slug)
    now = clock.now()
    study = Study(
        slug=slug,
        name=name,
        description=description,
        status=status,
        created_at=now,
        updated_at=now,
    )
    session.add(study)
    session.flush()
    record(
        session,
        clock,
        actor,
        "study.create",
        resource_type="study",
        resource_id=study.id,
        study_id=study.id,
        detail={"slug": slug, "name": name},
    )
    return study


def update_study(
    session: Session, clock: Clock, actor: Actor, study: Study, changes: dict[str, Any]
) -> Study:
    if "slug" in changes:
        _ensure_slug_free(session, changes["slug"], except_id=study.id)
    for field, value in changes.items():
        setattr(study, field, value)
    study.updated_at = clock.now()
    record(
        session,
        clock,
        actor,
        "study.update",
        resource_type="study",
        resource_id=study.id,
        study_id=study.id,
        detail={k: str(v) for k, v in changes.items()},
    )
    return study
