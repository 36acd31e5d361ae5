import uuid
from datetime import datetime
from typing import Annotated

from pydantic import ConfigDict, Field, StringConstraints

from app.api.schemas.common import CheckText, Instant, Schema, Version, examples
from app.export.formats import ExportFormat

_JOB_EXAMPLE = {
    "id": "019a8b5e-6f4c-7e5d-8a71-8c9d0e1f2a3b",
    "study_id": "019a8b5e-3c1f-7a2b-9d4e-5f6a7b8c9d0e",
    "dataset": "ema_answers",
    "format": "parquet",
    "status": "done",
    "error": None,
    "size_bytes": 73400320,
    "created_at": "2026-11-20T09:00:00Z",
    "started_at": "2026-11-20T09:00:04Z",
    "finished_at": "2026-11-20T09:03:10Z",
}


class ExportJobRequest(Schema):
    model_config = ConfigDict(
        json_schema_extra=examples(
            {
                "dataset": "ema_answers",
                "format": "parquet",
                "start": "2026-01-01T00:00:00Z",
                "end": "2027-01-01T00:00:00Z",
            }
        )
    )

    dataset: Annotated[str, StringConstraints(max_length=64), CheckText] = Field(
        description="One of the datasets of `GET …/exports/{dataset}`."
    )
    format: ExportFormat = ExportFormat.csv
    participant_ids: list[uuid.UUID] = Field(
        default_factory=list, description="Only these participants (default: all)."
    )
    start: Instant | None = Field(None, description="Only records from this time on.")
    end: Instant | None = Field(None, description="Only records before this time.")
    protocol_version: Version | None = Field(None, description="Only this protocol version.")


class ExportJobOut(Schema):
    model_config = ConfigDict(json_schema_extra=examples(_JOB_EXAMPLE))

    id: uuid.UUID
    study_id: uuid.UUID
    dataset: str
    format: ExportFormat
    status: str = Field(description="pending, running, done or failed.")
    error: str | None
    size_bytes: int | None = Field(description="Size of the zip bundle when done.")
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
