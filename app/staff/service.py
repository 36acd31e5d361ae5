import uuid
from collections.abc import Sequence
from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.audit.service import Actor, record
from app.core.clock import Clock
from app.core.errors import NotFoundError
from app.core.pagination import keyset_page
from app.core.secrets import STAFF_KEY_PREFIX, hash_token, new_staff_key
from app.staff.models import ApiKey, Role

_LAST_USED_RESOLUTION = timedelta(minutes=5)


def create_api_key(
    session: Session,
    clock: Clock,
    actor: Actor,
    *,
    name: str,
    role: Role,
    created_by_id: uuid.UUID | None = None,
) -> tuple[ApiKey, str]:
    """Create a key; the plaintext is returned once and never stored."""
    key = new_staff_key()
    api_key = ApiKey(
        name=name,
        role=role,
        key_hash=hash_token(key),
        key_prefix=key[: len(STAFF_KEY_PREFIX) + 6],
        created_at=clock.now(),
        created_by_id=created_by_id,
    )
    session.add(api_key)
    session.flush()
    record(
        session,
        clock,
        actor,
        "api_key.create",
        resource_type="api_key",
        resource_id=api_key.id,
        detail={"name": name, "role": str(role)},
    )
    return api_key, key


def authenticate_api_key(session: Session, clock: Clock, key: str) -> ApiKey | None:
    api_key = session.scalar(sa.select(ApiKey).where(ApiKey.key_hash == hash_token(key)))
    if api_key is None or api_key.revoked_at is not None:
        return None
    now = clock.now()
    if api_key.last_used_at is None or now - api_key.last_used_at >= _LAST_USED_RESOLUTION:
        api_key.last_used_at = now
    return api_key


def list_api_keys(
    session: Session, *, after: uuid.UUID | None, limit: int, include_revoked: bool = False
) -> tuple[Sequence[ApiKey], uuid.UUID | None]:
    stmt = sa.select(ApiKey)
    if not include_revoked:
        stmt = stmt.where(ApiKey.revoked_at.is_(None))
    return keyset_page(session, stmt, ApiKey.id, after=after, limit=limit)


def revoke_api_key(session: Session, clock: Clock, actor: Actor, key_id: uuid.UUID) -> ApiKey:
    api_key = session.get(ApiKey, key_id)
    if api_key is None:
        raise NotFoundError(f"API key {key_id} does not exist", code="api_key_not_found")
    if api_key.revoked_at is None:
        api_key.revoked_at = clock.now()
        record(
            session,
            clock,
            actor,
            "api_key.revoke",
            resource_type="api_key",
            resource_id=api_key.id,
            detail={"name": api_key.name},
        )
    return api_key
