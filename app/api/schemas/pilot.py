import uuid
from datetime import datetime

from pydantic import ConfigDict, Field

from app.api.schemas.common import Schema, examples

_ITEM_EXAMPLE = {
    "id": "019a8b5e-5e3b-7d4c-9f60-7b8c9d0e1f2a",
    "kind": "decision_point",
    "source_id": "morning",
    "questionnaire_id": None,
    "due_at": "2026-12-04T08:00:00Z",
    "local_due_at": "2026-12-04T09:00:00+01:00",
    "expires_at": None,
    "status": "planned",
}


class PlannedItemOut(Schema):
    model_config = ConfigDict(json_schema_extra=examples(_ITEM_EXAMPLE))

    id: uuid.UUID
    kind: str = Field(description="ema_prompt, decision_point or reminder.")
    source_id: str = Field(description="The EMA schedule or decision point of the protocol.")
    questionnaire_id: str | None
    due_at: datetime = Field(description="When it fires (UTC).")
    local_due_at: datetime = Field(description="The same instant in the participant's zone.")
    expires_at: datetime | None
    status: str = Field(description="planned, or claimed while a worker fires it.")


class PlannedSchedule(Schema):
    model_config = ConfigDict(
        json_schema_extra=examples(
            {
                "timezone": "Europe/Berlin",
                "start": "2026-12-03T19:30:00Z",
                "end": "2026-12-10T19:30:00Z",
                "items": [_ITEM_EXAMPLE],
            }
        )
    )

    timezone: str
    start: datetime
    end: datetime
    items: list[PlannedItemOut]


_DEVICE_OUTCOME = {
    "device_id": "019a8b5e-5e3b-7d4c-9f60-7b8c9d0e1f2a",
    "platform": "android",
    "outcome": "accepted",
    "error_code": None,
    "response": "projects/kairos/messages/0:1700000000000000%abc",
    "device_disabled": False,
}


class TestPushDeviceOut(Schema):
    model_config = ConfigDict(json_schema_extra=examples(_DEVICE_OUTCOME))

    device_id: uuid.UUID
    platform: str
    outcome: str = Field(
        description="accepted, invalid_token (the device is disabled), retry or rejected."
    )
    error_code: str | None
    response: str | None = Field(description="The provider's message id, or its error.")
    device_disabled: bool


class TestPushOut(Schema):
    model_config = ConfigDict(
        json_schema_extra=examples({"channel": "fcm", "devices": [_DEVICE_OUTCOME]})
    )

    channel: str = Field(description="The channel used: fcm, or log without credentials.")
    devices: list[TestPushDeviceOut] = Field(
        description="One outcome per enabled device; empty when there is none."
    )
