import uuid
from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, ConfigDict, Field, StringConstraints

from app.api.schemas.common import CheckText, PatchSchema, Schema, Timezone, examples
from app.core.text import check_data
from app.participants.models import ParticipantStatus

AttributeValue = str | int | float | bool | list[str] | None
Attributes = Annotated[
    dict[
        Annotated[str, StringConstraints(min_length=1, max_length=64), CheckText],
        # One check of the whole value: text, 64-bit integers, finite numbers.
        Annotated[AttributeValue, AfterValidator(check_data)],
    ],
    Field(
        max_length=200,
        description="Personalization attributes (preferences, contraindication flags, pain "
        "phenotype …). Pseudonymous: never names, e-mails or phone numbers.",
        examples=[{"pain_phenotype": "nociplastic", "trauma_history": False}],
    ),
]
ParticipantCode = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$"
    ),
    CheckText,
    Field(description="The study's pseudonymous participant code.", examples=["P-0042"]),
]
Reason = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=2000),
    CheckText,
    Field(
        description="Why the status changes; kept in the status history.",
        examples=["participant asked for a two-week break"],
    ),
]

_PARTICIPANT_EXAMPLE = {
    "id": "019a8b5e-4d2a-7c3b-8e5f-6a7b8c9d0e1f",
    "study_id": "019a8b5e-3c1f-7a2b-9d4e-5f6a7b8c9d0e",
    "code": "P-0042",
    "timezone": "Europe/Berlin",
    "status": "active",
    "status_reason": "enrolled with the app",
    "status_changed_at": "2026-11-03T08:12:00Z",
    "enrolled_at": "2026-11-03T08:12:00Z",
    "attributes": {"pain_phenotype": "nociplastic", "trauma_history": False},
    "protocol_version": 1,
    "unreachable_since": None,
    "unreachable_reason": None,
    "created_at": "2026-11-02T10:00:00Z",
    "updated_at": "2026-11-03T08:12:00Z",
}


class ParticipantCreate(Schema):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "code": "P-0042",
                    "timezone": "Europe/Berlin",
                    "attributes": {"pain_phenotype": "nociplastic", "trauma_history": False},
                }
            ]
        }
    )

    code: ParticipantCode | None = Field(
        None, description="Leave out to have Kairos generate one (e.g. P-3F9A1C)."
    )
    timezone: Timezone
    attributes: Attributes = Field(default_factory=dict)


class ParticipantUpdate(PatchSchema):
    model_config = ConfigDict(json_schema_extra=examples({"timezone": "America/Chicago"}))

    code: ParticipantCode | None = None
    timezone: Timezone | None = None
    attributes: Attributes | None = None


class ParticipantOut(Schema):
    model_config = ConfigDict(json_schema_extra=examples(_PARTICIPANT_EXAMPLE))

    id: uuid.UUID
    study_id: uuid.UUID
    code: str
    timezone: str
    status: ParticipantStatus
    status_reason: str | None
    status_changed_at: datetime
    enrolled_at: datetime | None
    attributes: dict[str, AttributeValue]
    protocol_version: int | None = Field(
        description="The protocol version this participant follows (null while the study has none)."
    )
    unreachable_since: datetime | None = Field(
        description="Set when pushes could reach none of the participant's devices (push "
        "tokens unregistered or invalid, or none registered); null while reachable. Cleared "
        "when the app registers a device. Prompts stay available through the app's pull."
    )
    unreachable_reason: str | None = Field(description="Why the participant is unreachable.")
    created_at: datetime
    updated_at: datetime


class EnrollmentCodeOut(Schema):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"enrollment_code": "7K3M9-Q2XRT", "expires_at": "2026-11-16T10:00:00Z"}]
        }
    )

    enrollment_code: str = Field(
        description="One-time code the participant types into the app. Shown only now."
    )
    expires_at: datetime


class ParticipantCreated(ParticipantOut):
    model_config = ConfigDict(
        json_schema_extra=examples(
            {
                **_PARTICIPANT_EXAMPLE,
                "status": "invited",
                "status_reason": "created",
                "enrolled_at": None,
                "enrollment_code": "7K3M9-Q2XRT",
                "enrollment_code_expires_at": "2026-11-16T10:00:00Z",
            }
        )
    )

    enrollment_code: str = Field(
        description="One-time code the participant types into the app. Shown only now."
    )
    enrollment_code_expires_at: datetime


class ParticipantPage(Schema):
    model_config = ConfigDict(
        json_schema_extra=examples({"items": [_PARTICIPANT_EXAMPLE], "next_cursor": None})
    )

    items: list[ParticipantOut]
    next_cursor: uuid.UUID | None = Field(
        description="Pass as `cursor` to get the next page; null on the last page."
    )


class StatusChangeRequest(Schema):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"status": "paused", "reason": "participant asked for a two-week break"}]
        }
    )

    status: ParticipantStatus
    reason: Reason


class StatusChangeOut(Schema):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "from_status": "active",
                    "to_status": "paused",
                    "reason": "participant asked for a two-week break",
                    "changed_by": "staff:019a8b5e-1111-7000-8000-000000000001",
                    "changed_at": "2026-11-20T14:00:00Z",
                }
            ]
        }
    )

    from_status: ParticipantStatus | None
    to_status: ParticipantStatus
    reason: str | None
    changed_by: str
    changed_at: datetime


class TokensRevoked(Schema):
    model_config = ConfigDict(json_schema_extra=examples({"revoked": 1}))

    revoked: int = Field(description="How many live tokens were revoked.")
