import datetime as dt
import uuid
from datetime import datetime
from typing import Any

from pydantic import ConfigDict, Field

from app.api.schemas.alerts import AlertSendOut
from app.api.schemas.common import NonEmptyText, Schema, examples
from app.monitoring.models import FlagKind, FlagResolution

_FLAG_EXAMPLE = {
    "id": "019a8b5e-7a5d-7f6e-9b82-9d0e1f2a3b4c",
    "participant_id": "019a8b5e-4d2a-7c3b-8e5f-6a7b8c9d0e1f",
    "kind": "non_response",
    "detail": {
        "item": "*.pain",
        "direction": "lower_is_better",
        "baseline_mean": 6.4,
        "baseline_days": [0, 6],
        "baseline_answers": 14,
        "recent_mean": 6.1,
        "recent_days": [28, 34],
        "recent_answers": 13,
        "improvement": 0.0469,
        "required_improvement": 0.3,
        "week": 5,
    },
    "raised_at": "2026-12-01T03:00:00Z",
    "acknowledged_at": None,
    "acknowledged_by": None,
    "note": None,
    "resolved_at": None,
    "resolution": None,
}


class FlagOut(Schema):
    model_config = ConfigDict(json_schema_extra=examples(_FLAG_EXAMPLE))

    id: uuid.UUID
    participant_id: uuid.UUID
    kind: FlagKind
    detail: dict[str, Any] = Field(description="The figures that raised the flag.")
    raised_at: datetime
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    note: str | None
    resolved_at: datetime | None = Field(
        description="When the evaluation found the condition gone, or the care team ended "
        "a fatigue episode."
    )
    resolution: FlagResolution | None = Field(
        None,
        description="condition_gone (for fatigue: the clearing condition held) or "
        "ended_by_care_team (an acknowledgement with end_response, or a review).",
    )
    sends: list[AlertSendOut] = Field(
        default_factory=list,
        description="The flag's sends to the care routes (e-mail, webhook) with their "
        "delivery status: its timeline.",
    )


class FlagPage(Schema):
    model_config = ConfigDict(
        json_schema_extra=examples({"items": [_FLAG_EXAMPLE], "next_cursor": None})
    )

    items: list[FlagOut]
    next_cursor: uuid.UUID | None


class AcknowledgeRequest(Schema):
    model_config = ConfigDict(
        json_schema_extra=examples(
            {"note": "Called the participant; plan reviewed with GP."},
            {
                "note": "Agreed fewer check-ins for now; back to the full plan.",
                "end_response": True,
            },
        )
    )

    note: NonEmptyText = Field(max_length=2000, description="What the care team did about it.")
    end_response: bool = Field(
        False,
        description="Fatigue flags only: also end the fatigue episode now, with its automatic "
        "response (burden factor back to 1). Otherwise it lasts until its clearing condition.",
    )


_WEEK_EXAMPLE = {
    "week": 3,
    "start": "2026-11-23T08:12:00Z",
    "end": "2026-11-30T08:12:00Z",
    "means": {"*.pain": 5.2, "*.interference": 4.8},
    "baseline": {"*.pain": 6.4, "*.interference": 6.0},
    "ema_completion": 0.81,
    "engagement": 0.55,
    "prompts_offered": 21,
    "prompts_answered": 17,
    "interventions_sent": 9,
    "interventions_opened": 5,
    "wearables": {
        "steps": 5210.0,
        "active_minutes": 31.0,
        "sleep_minutes": 402.5,
        "sleep_efficiency": 88.0,
        "resting_heart_rate": 64.2,
    },
}


class WeekOut(Schema):
    model_config = ConfigDict(json_schema_extra=examples(_WEEK_EXAMPLE))

    week: int = Field(description="Study week; 0 is the enrollment week (the baseline).")
    start: datetime
    end: datetime
    means: dict[str, float | None] = Field(description="Each trend item's mean this week.")
    baseline: dict[str, float | None] = Field(description="Each trend item's week-0 mean.")
    ema_completion: float | None = Field(description="Answered / offered EMA prompts.")
    engagement: float | None = Field(description="Opened / sent intervention prompts.")
    prompts_offered: int
    prompts_answered: int
    interventions_sent: int
    interventions_opened: int
    wearables: dict[str, float | None] = Field(
        description="Wearable summaries this week: steps, active_minutes and sleep_minutes "
        "as the mean of each day's total (days with data), resting_heart_rate and "
        "sleep_efficiency as the mean of the values; null without data."
    )


class TrendsOut(Schema):
    model_config = ConfigDict(
        json_schema_extra=examples(
            {"participant_id": _FLAG_EXAMPLE["participant_id"], "weeks": [_WEEK_EXAMPLE]}
        )
    )

    participant_id: uuid.UUID
    weeks: list[WeekOut]


_DAY_EXAMPLE = {
    "date": "2026-11-24",
    "pain_mean": 4.5,
    "steps": 6120.0,
    "sleep_minutes": 402.0,
    "exercises_completed": 1,
}


class DayOut(Schema):
    model_config = ConfigDict(json_schema_extra=examples(_DAY_EXAMPLE))

    date: dt.date = Field(description="The participant's local date.")
    pain_mean: float | None
    steps: float | None
    sleep_minutes: float | None
    exercises_completed: int


class SummaryOut(Schema):
    model_config = ConfigDict(
        json_schema_extra=examples({"pain_item": "pain", "days": [_DAY_EXAMPLE]})
    )

    pain_item: str = Field(description="The questionnaire item whose mean is pain_mean.")
    days: list[DayOut] = Field(description="The last 28 local days, oldest first.")
