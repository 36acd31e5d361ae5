import uuid
from datetime import datetime

from pydantic import ConfigDict, Field

from app.api.schemas.alerts import AlertSendOut
from app.api.schemas.common import NonEmptyText, Schema, Text, examples
from app.care.models import ReviewOutcome, ReviewStatus, ReviewTrigger

_SEND_EXAMPLE = {
    "id": "019a8b5e-9c1d-7e2f-8a3b-4c5d6e7f8091",
    "level": 1,
    "channel": "email",
    "address": "pi@clinic.example",
    "status": "delivered",
    "attempts": 1,
    "last_error": None,
    "created_at": "2026-12-04T03:00:00Z",
    "delivered_at": "2026-12-04T03:00:02Z",
}

_REVIEW_EXAMPLE = {
    "id": "019a8b5e-8b2c-7d1e-9f0a-1b2c3d4e5f60",
    "participant_id": "019a8b5e-4d2a-7c3b-8e5f-6a7b8c9d0e1f",
    "trigger": "flag",
    "flag_id": "019a8b5e-7a5d-7f6e-9b82-9d0e1f2a3b4c",
    "status": "overdue",
    "due_at": "2026-12-01T03:00:00Z",
    "overdue_at": "2026-12-04T03:00:00Z",
    "notified_at": "2026-12-01T03:00:05Z",
    "escalated_at": "2026-12-04T03:00:01Z",
    "completed_at": None,
    "completed_by": None,
    "outcome": None,
    "reason": None,
    "note": None,
    "new_phase": None,
    "sends": [_SEND_EXAMPLE],
}


class ReviewOut(Schema):
    model_config = ConfigDict(json_schema_extra=examples(_REVIEW_EXAMPLE))

    id: uuid.UUID
    participant_id: uuid.UUID
    trigger: ReviewTrigger = Field(description="cadence (every_days) or flag (reviews.on_flags).")
    flag_id: uuid.UUID | None = Field(description="The flag that made it due.")
    status: ReviewStatus = Field(description="upcoming, due, overdue or completed (now).")
    due_at: datetime
    overdue_at: datetime = Field(description="due_at + the protocol's grace_days.")
    notified_at: datetime | None = Field(description="When it was sent to the care routes.")
    escalated_at: datetime | None = Field(description="When it was escalated as overdue.")
    completed_at: datetime | None
    completed_by: str | None
    outcome: ReviewOutcome | None
    reason: str | None = Field(description="Why the plan is maintained (or changed).")
    note: str | None
    new_phase: str | None = Field(description="The phase the outcome moved the participant to.")
    sends: list[AlertSendOut] = Field(
        description="Its timeline: each send to a care route (due, then overdue)."
    )


class ReviewPage(Schema):
    model_config = ConfigDict(
        json_schema_extra=examples({"items": [_REVIEW_EXAMPLE], "next_cursor": None})
    )

    items: list[ReviewOut]
    next_cursor: uuid.UUID | None


class ReviewCompletion(Schema):
    model_config = ConfigDict(
        json_schema_extra=examples(
            {
                "outcome": "change_phase",
                "phase": "intensified",
                "reason": "No improvement after 6 weeks of self-management.",
                "note": "Discussed with the participant by phone; agreed to step up.",
            },
            {
                "outcome": "maintain",
                "reason": "Pain flare after a fall; too early to judge the programme.",
                "note": "Re-review in two weeks.",
            },
        )
    )

    outcome: ReviewOutcome = Field(
        description="escalate, change_phase, step_down, maintain or refer."
    )
    note: NonEmptyText = Field(max_length=4000, description="What was reviewed and decided.")
    reason: Text | None = Field(
        default=None,
        max_length=4000,
        description="Why; required for maintain while a non-response flag is open.",
    )
    phase: Text | None = Field(
        default=None,
        max_length=64,
        description="The phase to move the participant to: required for change_phase, "
        "allowed for escalate and step_down.",
    )
    end_fatigue_response: bool = Field(
        default=False,
        description="End the participant's open fatigue episode with this review: the flag "
        "is resolved (ended_by_care_team) and the burden factor goes back to 1. 409 when no "
        "episode is open.",
    )


class PhaseChangeRequest(Schema):
    model_config = ConfigDict(
        json_schema_extra=examples(
            {"phase": "intensified", "reason": "Pain interference unchanged after 6 weeks."}
        )
    )

    phase: NonEmptyText = Field(max_length=64, description="A phase the protocol declares.")
    reason: NonEmptyText = Field(max_length=4000, description="Why the participant is moved.")


_CHANGE_EXAMPLE = {
    "id": "019a8b5e-aa1b-7c2d-8e3f-405162738495",
    "from_phase": "self_management",
    "to_phase": "intensified",
    "reason": "Pain interference unchanged after 6 weeks.",
    "changed_at": "2026-12-04T10:12:00Z",
    "changed_by": "staff:019a8b5e-0000-7000-8000-000000000001",
    "review_id": None,
}


class PhaseChangeOut(Schema):
    model_config = ConfigDict(json_schema_extra=examples(_CHANGE_EXAMPLE))

    id: uuid.UUID
    from_phase: str
    to_phase: str
    reason: str
    changed_at: datetime
    changed_by: str
    review_id: uuid.UUID | None = Field(description="The review whose outcome moved it.")


class PhasesOut(Schema):
    model_config = ConfigDict(
        json_schema_extra=examples(
            {
                "participant_id": _REVIEW_EXAMPLE["participant_id"],
                "phase": "intensified",
                "declared": ["education", "self_management", "intensified"],
                "history": [_CHANGE_EXAMPLE],
            }
        )
    )

    participant_id: uuid.UUID
    phase: str | None = Field(description="The current phase (null: no phases declared).")
    declared: list[str] = Field(description="The protocol's phases, least intensive first.")
    history: list[PhaseChangeOut] = Field(description="Every change, oldest first.")


class InertiaOut(Schema):
    model_config = ConfigDict(
        json_schema_extra=examples(
            {
                "within_days": 14,
                "non_response_flags": 12,
                "reviewed": 10,
                "median_hours_to_review": 30.5,
                "mean_hours_to_review": 41.2,
                "decided": 11,
                "plan_changed_in_time": 7,
                "plan_change_share": 0.636,
            }
        )
    )

    within_days: int | None = Field(
        description="N of the plan-change measure (null: each protocol's own)."
    )
    non_response_flags: int
    reviewed: int = Field(description="Flags followed by a completed review.")
    median_hours_to_review: float | None
    mean_hours_to_review: float | None
    decided: int = Field(
        description="Flags whose N days have passed, or whose plan changed within them."
    )
    plan_changed_in_time: int
    plan_change_share: float | None = Field(description="plan_changed_in_time / decided.")
