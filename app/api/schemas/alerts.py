import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import ConfigDict, Field, StringConstraints

from app.api.schemas.common import CheckText, Schema, examples

_ALERT_EXAMPLE = {
    "id": "019a8b5e-be2f-7a3b-8c4d-5e6f7a8b9c0d",
    "study_id": "019a8b5e-3c1f-7a2b-9d4e-5f6a7b8c9d0e",
    "participant_id": "019a8b5e-4d2a-7c3b-8e5f-6a7b8c9d0e1f",
    "response_id": "019a8b5e-6f7a-7b8c-9d0e-1f2a3b4c5d6e",
    "questionnaire_id": "evening",
    "item_id": "self_harm",
    "severity": "critical",
    "message": "Participant reported thoughts of self-harm. Follow the crisis procedure.",
    "value": True,
    "answered_at": "2026-11-20T19:02:00Z",
    "created_at": "2026-11-20T19:02:01Z",
    "acknowledged_at": None,
    "acknowledged_by": None,
    "acknowledgement_note": None,
    "webhook_status": "delivered",
    "webhook_attempts": 1,
    "webhook_last_error": None,
    "escalation_level": 0,
    "escalation_due_at": "2026-11-20T19:17:01Z",
    "safety_response_push": {
        "notification_id": "019a8b5e-be31-7a3b-8c4d-5e6f7a8b9c0f",
        "status": "sent",
        "status_reason": None,
        "created_at": "2026-11-20T19:02:01Z",
        "sent_at": "2026-11-20T19:02:03Z",
    },
    "sends": [
        {
            "id": "019a8b5e-be30-7a3b-8c4d-5e6f7a8b9c0e",
            "level": 0,
            "channel": "email",
            "address": "on-call@clinic.example",
            "status": "delivered",
            "attempts": 1,
            "last_error": None,
            "created_at": "2026-11-20T19:02:01Z",
            "delivered_at": "2026-11-20T19:02:02Z",
        }
    ],
}


class AlertSendOut(Schema):
    model_config = ConfigDict(json_schema_extra=examples(_ALERT_EXAMPLE["sends"][0]))  # type: ignore[index]

    id: uuid.UUID
    level: int = Field(description="The route level it was sent to (0: at once).")
    channel: str = Field(description="email or webhook.")
    address: str | None = Field(description="The e-mail address; null for the webhook.")
    status: str = Field(description="pending, sending, delivered or failed (gave up).")
    attempts: int
    last_error: str | None
    created_at: datetime = Field(description="When it was due: raised, or escalated.")
    delivered_at: datetime | None


class SafetyPushOut(Schema):
    """The safety response pushed to the participant's phone (crisis line text and link)."""

    model_config = ConfigDict(json_schema_extra=examples(_ALERT_EXAMPLE["safety_response_push"]))

    notification_id: uuid.UUID
    status: str = Field(description="pending, sending, sent, failed, expired or cancelled.")
    status_reason: str | None
    created_at: datetime
    sent_at: datetime | None = Field(description="When the push provider accepted it.")


class AlertOut(Schema):
    model_config = ConfigDict(json_schema_extra=examples(_ALERT_EXAMPLE))

    id: uuid.UUID
    study_id: uuid.UUID
    participant_id: uuid.UUID
    response_id: uuid.UUID | None
    questionnaire_id: str
    item_id: str
    severity: str = Field(description="low, medium, high or critical (from the protocol).")
    message: str
    value: Any = Field(description="The answer that raised the alert.")
    answered_at: datetime
    created_at: datetime
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    acknowledgement_note: str | None
    webhook_status: str = Field(
        description="The deployment-wide webhook: pending, sending (being posted now), "
        "delivered, failed (gave up), not_configured, or routed (the study has care routes, "
        "which decide who is sent it: see `sends`)."
    )
    webhook_attempts: int
    webhook_last_error: str | None
    escalation_level: int = Field(description="The highest route level sent the alert so far.")
    escalation_due_at: datetime | None = Field(
        description="When it goes to the next route level if still unacknowledged; null: never."
    )
    sends: list[AlertSendOut] = Field(
        description="Its timeline: every send to a care route, escalations included, oldest first."
    )
    safety_response_push: SafetyPushOut | None = Field(
        None,
        description="The protocol's safety response pushed to the participant when the "
        "answer was accepted, with its delivery status (null: the item declares none).",
    )


class AlertPage(Schema):
    model_config = ConfigDict(
        json_schema_extra=examples({"items": [_ALERT_EXAMPLE], "next_cursor": None})
    )

    items: list[AlertOut]
    next_cursor: uuid.UUID | None = Field(
        description="Pass as `cursor` to get the next page; null on the last page."
    )


class AlertAcknowledge(Schema):
    model_config = ConfigDict(
        json_schema_extra=examples(
            {"note": "Called the participant; safety plan reviewed, no immediate risk."}
        )
    )

    note: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=4000), CheckText
    ] = Field(description="What the care team did; kept with the alert and in the audit log.")
