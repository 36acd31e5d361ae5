import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import ConfigDict, Field, StringConstraints

from app.api.schemas.common import CheckText, Schema, examples
from app.staff.models import Role

_KEY_EXAMPLE = {
    "id": "019a8b5e-1111-7000-8000-000000000001",
    "name": "Coordinator, site Berlin",
    "role": "coordinator",
    "key_prefix": "ksk_Xb9q2L",
    "created_at": "2026-11-01T09:00:00Z",
    "created_by_id": None,
    "last_used_at": "2026-11-20T10:30:00Z",
    "revoked_at": None,
}

_AUDIT_EXAMPLE = {
    "id": "019a8b5e-6f4c-7e5d-a071-8c9d0e1f2a3b",
    "occurred_at": "2026-11-20T14:00:00Z",
    "actor": "staff:019a8b5e-1111-7000-8000-000000000001",
    "actor_role": "coordinator",
    "action": "participant.status_change",
    "study_id": "019a8b5e-3c1f-7a2b-9d4e-5f6a7b8c9d0e",
    "resource_type": "participant",
    "resource_id": "019a8b5e-4d2a-7c3b-8e5f-6a7b8c9d0e1f",
    "detail": {"to": "paused", "reason": "participant asked for a two-week break"},
}


class ApiKeyCreate(Schema):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"name": "Coordinator, site Berlin", "role": "coordinator"}]
        }
    )

    name: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200), CheckText
    ]
    role: Role


class ApiKeyOut(Schema):
    model_config = ConfigDict(json_schema_extra=examples(_KEY_EXAMPLE))

    id: uuid.UUID
    name: str
    role: Role
    key_prefix: str
    created_at: datetime
    created_by_id: uuid.UUID | None
    last_used_at: datetime | None
    revoked_at: datetime | None


class ApiKeyCreated(ApiKeyOut):
    model_config = ConfigDict(json_schema_extra=examples({**_KEY_EXAMPLE, "key": "ksk_Xb9q2L…"}))

    key: str = Field(description="The secret key. Shown only now; Kairos stores only its hash.")


class ApiKeyPage(Schema):
    model_config = ConfigDict(
        json_schema_extra=examples({"items": [_KEY_EXAMPLE], "next_cursor": None})
    )

    items: list[ApiKeyOut]
    next_cursor: uuid.UUID | None


class AuditEventOut(Schema):
    model_config = ConfigDict(json_schema_extra=examples(_AUDIT_EXAMPLE))

    id: uuid.UUID
    occurred_at: datetime
    actor: str
    actor_role: str | None
    action: str
    study_id: uuid.UUID | None
    resource_type: str
    resource_id: str | None
    detail: dict[str, Any]


class AuditEventPage(Schema):
    model_config = ConfigDict(
        json_schema_extra=examples({"items": [_AUDIT_EXAMPLE], "next_cursor": None})
    )

    items: list[AuditEventOut]
    next_cursor: uuid.UUID | None
