import uuid
from datetime import datetime
from typing import Annotated

from pydantic import ConfigDict, Field, StringConstraints

from app.api.schemas.common import CheckText, PatchSchema, Schema, Timezone, examples
from app.participants.models import ParticipantStatus

_ME_EXAMPLE = {
    "id": "019a8b5e-4d2a-7c3b-8e5f-6a7b8c9d0e1f",
    "code": "P-0042",
    "study_id": "019a8b5e-3c1f-7a2b-9d4e-5f6a7b8c9d0e",
    "study_name": "JITAI for chronic low back pain",
    "timezone": "Europe/Berlin",
    "status": "active",
    "enrolled_at": "2026-11-03T08:12:00Z",
}


class EnrollRequest(Schema):
    model_config = ConfigDict(json_schema_extra=examples({"code": "7K3M9-Q2XRT"}))

    code: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64), CheckText
    ] = Field(description="The enrollment code the study team gave the participant.")


class MeOut(Schema):
    model_config = ConfigDict(json_schema_extra=examples(_ME_EXAMPLE))

    id: uuid.UUID
    code: str
    study_id: uuid.UUID
    study_name: str
    timezone: str
    status: ParticipantStatus
    enrolled_at: datetime | None


class EnrollResponse(Schema):
    model_config = ConfigDict(
        json_schema_extra=examples(
            {"access_token": "kpt_3q2-Xb9…", "token_type": "bearer", "participant": _ME_EXAMPLE}
        )
    )

    access_token: str = Field(
        description="Send as 'Authorization: Bearer <token>'. Shown only now; keep it in the "
        "phone's secure storage."
    )
    token_type: str = "bearer"  # noqa: S105 (the OAuth token type, not a secret)
    participant: MeOut


class MeUpdate(PatchSchema):
    model_config = ConfigDict(json_schema_extra=examples({"timezone": "America/New_York"}))

    timezone: Timezone | None = Field(
        None, description="Send when the phone's time zone changes (travel, moving)."
    )
