"""Administration: staff API keys and the audit log."""

import uuid
from typing import Annotated

import sqlalchemy as sa
from fastapi import APIRouter, Query

from app.api.auth import Admin
from app.api.deps import DEFAULT_LIMIT, ClockDep, LimitQuery, SessionDep
from app.api.problems import problem_responses
from app.api.schemas.common import Text
from app.api.schemas.staff import (
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyOut,
    ApiKeyPage,
    AuditEventOut,
    AuditEventPage,
)
from app.audit.models import AuditEvent
from app.core.pagination import keyset_page
from app.staff import service

router = APIRouter(
    prefix="/v1", tags=["administration"], responses=problem_responses(401, 403, 422)
)

Cursor = Annotated[uuid.UUID | None, Query(description="`next_cursor` of the previous page.")]


@router.post(
    "/api-keys", status_code=201, response_model=ApiKeyCreated, summary="Create a staff API key"
)
def create_api_key(
    body: ApiKeyCreate, caller: Admin, session: SessionDep, clock: ClockDep
) -> ApiKeyCreated:
    """Creates a key for a coordinator, researcher or another admin.

    The key is in this response only; Kairos keeps just its hash. Roles: admin.
    """
    api_key, key = service.create_api_key(
        session,
        clock,
        caller.actor,
        name=body.name,
        role=body.role,
        created_by_id=caller.api_key.id,
    )
    session.commit()
    return ApiKeyCreated(**ApiKeyOut.model_validate(api_key).model_dump(), key=key)


@router.get("/api-keys", response_model=ApiKeyPage, summary="List staff API keys")
def list_api_keys(
    caller: Admin,
    session: SessionDep,
    limit: LimitQuery = DEFAULT_LIMIT,
    cursor: Cursor = None,
    include_revoked: Annotated[bool, Query(description="Also list revoked keys.")] = False,
) -> ApiKeyPage:
    """Lists keys (never the secrets), with when each was last used. Roles: admin."""
    items, next_cursor = service.list_api_keys(
        session, after=cursor, limit=limit, include_revoked=include_revoked
    )
    return ApiKeyPage(items=[ApiKeyOut.model_validate(k) for k in items], next_cursor=next_cursor)


@router.delete(
    "/api-keys/{key_id}",
    response_model=ApiKeyOut,
    summary="Revoke a staff API key",
    responses=problem_responses(404),
)
def revoke_api_key(
    key_id: uuid.UUID, caller: Admin, session: SessionDep, clock: ClockDep
) -> ApiKeyOut:
    """Revokes a key at once; requests with it get 401 from now on. Roles: admin."""
    api_key = service.revoke_api_key(session, clock, caller.actor, key_id)
    session.commit()
    return ApiKeyOut.model_validate(api_key)


@router.get("/audit-events", response_model=AuditEventPage, summary="Read the audit log")
def list_audit_events(
    caller: Admin,
    session: SessionDep,
    limit: LimitQuery = DEFAULT_LIMIT,
    cursor: Cursor = None,
    study_id: Annotated[uuid.UUID | None, Query(description="Only events of this study.")] = None,
    action: Annotated[
        Text | None, Query(max_length=200, description="Only this action, e.g. participant.create.")
    ] = None,
) -> AuditEventPage:
    """Staff actions and staff reads of participant data, oldest first. Roles: admin."""
    stmt = sa.select(AuditEvent)
    if study_id is not None:
        stmt = stmt.where(AuditEvent.study_id == study_id)
    if action is not None:
        stmt = stmt.where(AuditEvent.action == action)
    items, next_cursor = keyset_page(session, stmt, AuditEvent.id, after=cursor, limit=limit)
    return AuditEventPage(
        items=[AuditEventOut.model_validate(e) for e in items], next_cursor=next_cursor
    )
