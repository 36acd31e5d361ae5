"""What the app and staff read back: EMA responses, wearable summaries, engagement events."""

import uuid
from datetime import datetime
from typing import Any

from pydantic import ConfigDict, Field

from app.api.schemas.common import Schema, examples

_RESPONSE_EXAMPLE = {
    "id": "019a8b5e-6f7a-7b8c-9d0e-1f2a3b4c5d6e",
    "client_id": "5f0c6d1e-8a4b-4c59-9e0f-1b2c3d4e5f60",
    "prompt_id": "019a8b5e-7a8b-7c9d-8e0f-1a2b3c4d5e6f",
    "questionnaire_id": "morning",
    "questionnaire_version": 1,
    "protocol_version": 1,
    "answered_at": "2026-11-20T07:05:00Z",
    "utc_offset_minutes": 60,
    "received_at": "2026-11-20T07:05:02Z",
    "late": False,
    "answers": {"pain": 6, "interference": 4, "mood": "neutral"},
}
_SUMMARY_EXAMPLE = {
    "id": "019a8b5e-9c0d-7e1f-8a2b-3c4d5e6f7a8b",
    "client_id": "steps-2026-11-20T08",
    "metric": "steps",
    "unit": "count",
    "start": "2026-11-20T07:00:00Z",
    "end": "2026-11-20T08:00:00Z",
    "value": 1234.0,
    "source_format": "kairos",
    "received_at": "2026-11-20T08:01:00Z",
    "updated_at": "2026-11-20T08:01:00Z",
}
_EVENT_EXAMPLE = {
    "id": "019a8b5e-ad1e-7f2a-9b3c-4d5e6f7a8b9c",
    "client_id": "0b9e5a52-6c1d-4a3e-8f7b-2c4d6e8f0a1b",
    "kind": "exercise_completed",
    "notification_id": "019a8b5e-8b9c-7d0e-9f1a-2b3c4d5e6f70",
    "prompt_id": None,
    "exercise_id": "acceptance-1",
    "occurred_at": "2026-11-20T09:42:00Z",
    "received_at": "2026-11-20T09:42:03Z",
    "duration_seconds": 310.0,
    "rating": None,
}
_NEXT = Field(description="Pass as `cursor` to get the next page; null on the last page.")


class EmaResponseOut(Schema):
    model_config = ConfigDict(json_schema_extra=examples(_RESPONSE_EXAMPLE))

    id: uuid.UUID
    client_id: str
    prompt_id: uuid.UUID | None
    questionnaire_id: str
    questionnaire_version: int
    protocol_version: int
    answered_at: datetime = Field(description="When the participant answered, in UTC.")
    utc_offset_minutes: int = Field(description="The phone's UTC offset when they answered.")
    received_at: datetime
    late: bool = Field(description="Answered after the prompt had expired.")
    answers: dict[str, Any] = Field(description="Item id -> answer (skipped items absent).")


class EmaResponsePage(Schema):
    model_config = ConfigDict(
        json_schema_extra=examples({"items": [_RESPONSE_EXAMPLE], "next_cursor": None})
    )

    items: list[EmaResponseOut]
    next_cursor: uuid.UUID | None = _NEXT


class WearableSummaryOut(Schema):
    model_config = ConfigDict(json_schema_extra=examples(_SUMMARY_EXAMPLE))

    id: uuid.UUID
    client_id: str | None
    metric: str
    unit: str = Field(description="The normalized unit: count, min, percent or bpm.")
    start: datetime
    end: datetime
    value: float
    source_format: str = Field(description="kairos, or omh for Open mHealth data points.")
    received_at: datetime
    updated_at: datetime = Field(description="When the value last changed (re-syncs).")


class WearableSummaryPage(Schema):
    model_config = ConfigDict(
        json_schema_extra=examples({"items": [_SUMMARY_EXAMPLE], "next_cursor": None})
    )

    items: list[WearableSummaryOut]
    next_cursor: uuid.UUID | None = _NEXT


class EngagementEventOut(Schema):
    model_config = ConfigDict(json_schema_extra=examples(_EVENT_EXAMPLE))

    id: uuid.UUID
    client_id: str
    kind: str
    notification_id: uuid.UUID | None
    prompt_id: uuid.UUID | None
    exercise_id: str | None
    occurred_at: datetime
    received_at: datetime
    duration_seconds: float | None
    rating: int | None


class EngagementEventPage(Schema):
    model_config = ConfigDict(
        json_schema_extra=examples({"items": [_EVENT_EXAMPLE], "next_cursor": None})
    )

    items: list[EngagementEventOut]
    next_cursor: uuid.UUID | None = _NEXT
