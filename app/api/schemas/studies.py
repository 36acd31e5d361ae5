import uuid
from datetime import datetime
from typing import Annotated

from pydantic import ConfigDict, Field, StringConstraints

from app.api.schemas.common import CheckText, PatchSchema, Schema, Slug, examples
from app.studies.models import StudyStatus

_STUDY_EXAMPLE = {
    "id": "019a8b5e-3c1f-7a2b-9d4e-5f6a7b8c9d0e",
    "slug": "pain-jitai-2026",
    "name": "JITAI for chronic low back pain",
    "description": "12-week micro-randomized trial of pain-acceptance prompts.",
    "status": "active",
    "active_protocol_version": 2,
    "created_at": "2026-11-02T09:00:00Z",
    "updated_at": "2026-11-02T09:00:00Z",
}

Name = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200), CheckText
]
Description = Annotated[str, StringConstraints(max_length=10_000), CheckText]


class StudyCreate(Schema):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "slug": "pain-jitai-2026",
                    "name": "JITAI for chronic low back pain",
                    "description": "12-week micro-randomized trial of pain-acceptance prompts.",
                }
            ]
        }
    )

    slug: Slug
    name: Name
    description: Description = ""
    status: StudyStatus = Field(StudyStatus.draft, description="draft, active or closed.")


class StudyUpdate(PatchSchema):
    model_config = ConfigDict(
        json_schema_extra=examples({"status": "active"}, {"name": "Renamed study"})
    )

    slug: Slug | None = None
    name: Name | None = None
    description: Description | None = None
    status: StudyStatus | None = None


class StudyOut(Schema):
    model_config = ConfigDict(json_schema_extra=examples(_STUDY_EXAMPLE))

    id: uuid.UUID
    slug: str
    name: str
    description: str
    status: StudyStatus
    active_protocol_version: int | None = Field(
        description="The protocol version new participants get; null until one is uploaded."
    )
    created_at: datetime
    updated_at: datetime


class StudyPage(Schema):
    model_config = ConfigDict(
        json_schema_extra=examples({"items": [_STUDY_EXAMPLE], "next_cursor": None})
    )

    items: list[StudyOut]
    next_cursor: uuid.UUID | None = Field(
        description="Pass as `cursor` to get the next page; null on the last page."
    )
