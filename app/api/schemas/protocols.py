import uuid
from datetime import datetime
from typing import Any

from pydantic import ConfigDict, Field

from app.api.schemas.common import Schema, examples
from app.study_operations.protocol_versions import ApplyTo

_VERSION_EXAMPLE = {
    "id": "019a8b5e-5e3b-7d4c-9f60-7b8c9d0e1f2a",
    "study_id": "019a8b5e-3c1f-7a2b-9d4e-5f6a7b8c9d0e",
    "version": 2,
    "content_hash": "3f1c0e6b2a9d4c8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e",
    "note": "Raise the daily cap to 4 prompts (amendment 3).",
    "active": True,
    "locked_at": "2026-11-04T08:00:00Z",
    "created_at": "2026-11-03T16:20:00Z",
    "created_by": "staff:019a8b5e-1a2b-7c3d-8e4f-5a6b7c8d9e0f",
    "updated_at": "2026-11-03T16:20:00Z",
}


class ProtocolVersionOut(Schema):
    model_config = ConfigDict(json_schema_extra=examples(_VERSION_EXAMPLE))

    id: uuid.UUID
    study_id: uuid.UUID
    version: int = Field(description="1, 2, … per study, in upload order.")
    content_hash: str = Field(description="SHA-256 of the normalized document.")
    note: str = Field(description="What changed in this version, in the uploader's words.")
    active: bool = Field(description="Whether new participants get this version.")
    locked_at: datetime | None = Field(
        description="When a participant first used this version; from then on it is immutable."
    )
    created_at: datetime
    created_by: str
    updated_at: datetime


_WARNING_EXAMPLE = {
    "path": "policy.availability.conditions[0]",
    "message": "false on the enrollment day (days_enrolled = 0): no decision point is "
    "available on the day a participant enrolls",
}


class ProtocolWarningOut(Schema):
    model_config = ConfigDict(json_schema_extra=examples(_WARNING_EXAMPLE))

    path: str = Field(description="Where in the document.")
    message: str


def _warnings() -> Any:
    return Field(
        default_factory=list,
        description="What is allowed but probably not meant (a rule that can never fire, a "
        "variable without default, pushes beyond the cap …); warnings never block an upload.",
    )


class ProtocolVersionUploaded(ProtocolVersionOut):
    model_config = ConfigDict(
        json_schema_extra=examples({**_VERSION_EXAMPLE, "warnings": [_WARNING_EXAMPLE]})
    )

    warnings: list[ProtocolWarningOut] = _warnings()


class ProtocolVersionDetail(ProtocolVersionOut):
    model_config = ConfigDict(
        json_schema_extra=examples(
            {
                **_VERSION_EXAMPLE,
                "document": {"kairos_protocol": 1, "study": {"name": "…"}},
                "source": "kairos_protocol: 1\nstudy:\n  name: …\n",
            }
        )
    )

    document: dict[str, Any] = Field(
        description="The validated document with every default filled in, as Kairos reads it."
    )
    source: str = Field(description="The document exactly as uploaded (YAML comments kept).")


class ProtocolVersionPage(Schema):
    model_config = ConfigDict(
        json_schema_extra=examples({"items": [_VERSION_EXAMPLE], "next_cursor": None})
    )

    items: list[ProtocolVersionOut]
    next_cursor: uuid.UUID | None = Field(
        description="Pass as `cursor` to get the next page; null on the last page."
    )


class ActivateRequest(Schema):
    model_config = ConfigDict(
        json_schema_extra=examples(
            {"apply_to": "new_participants"}, {"apply_to": "all_participants"}
        )
    )

    apply_to: ApplyTo = Field(
        ApplyTo.new_participants,
        description="`new_participants`: only participants created from now on get this "
        "version. `all_participants`: a protocol amendment; every participant still in the "
        "study moves to it (withdrawn and completed participants keep theirs).",
    )


class ActivateResult(Schema):
    model_config = ConfigDict(
        json_schema_extra=examples({"active_protocol_version": 2, "participants_moved": 37})
    )

    active_protocol_version: int
    participants_moved: int


class ValidationResult(Schema):
    model_config = ConfigDict(
        json_schema_extra=examples(
            {
                "valid": True,
                "content_hash": _VERSION_EXAMPLE["content_hash"],
                "document": {},
                "warnings": [_WARNING_EXAMPLE],
            }
        )
    )

    valid: bool = Field(description="Always true: an invalid document is a 422 problem.")
    content_hash: str
    document: dict[str, Any] = Field(description="The document with every default filled in.")
    warnings: list[ProtocolWarningOut] = _warnings()
