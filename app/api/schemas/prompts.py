import uuid
from datetime import datetime

from pydantic import ConfigDict, Field

from app.api.schemas.common import Schema, examples

_PROMPT = {
    "scheduled_item_id": "019a8b5e-7777-7c3b-8e5f-6a7b8c9d0e1f",
    "notification_id": "019a8b5e-8888-7c3b-8e5f-6a7b8c9d0e1f",
    "schedule_id": "evening",
    "questionnaire_id": "evening",
    "due_at": "2026-11-03T19:00:00Z",
    "expires_at": "2026-11-03T20:30:00Z",
    "deep_link": "kairos://ema/019a8b5e-7777-7c3b-8e5f-6a7b8c9d0e1f",
}
_INTERVENTION = {
    "notification_id": "019a8b5e-9999-7c3b-8e5f-6a7b8c9d0e1f",
    "scheduled_item_id": "019a8b5e-6666-7c3b-8e5f-6a7b8c9d0e1f",
    "decision_id": "019a8b5e-5555-7c3b-8e5f-6a7b8c9d0e1f",
    "option_id": "acceptance_exercise",
    "title": "Make room for the pain",
    "body": "A 5-minute acceptance exercise for a hard day.",
    "deep_link": "kairos://exercise/acceptance-1",
    "data": {"exercise_id": "acceptance-1"},
    "created_at": "2026-11-03T13:00:02Z",
    "expires_at": "2026-11-03T14:00:02Z",
}


class PendingPromptOut(Schema):
    model_config = ConfigDict(json_schema_extra=examples(_PROMPT))

    scheduled_item_id: uuid.UUID = Field(
        description="The prompt; send it back as `prompt_id` with the answers."
    )
    notification_id: uuid.UUID | None = Field(
        description="The push that announced it; echo it in engagement events."
    )
    schedule_id: str = Field(description="The protocol's EMA schedule.")
    questionnaire_id: str | None
    due_at: datetime
    expires_at: datetime | None = Field(description="Answers after this are late.")
    deep_link: str


class PendingInterventionOut(Schema):
    model_config = ConfigDict(json_schema_extra=examples(_INTERVENTION))

    notification_id: uuid.UUID = Field(description="Echo it in engagement events.")
    scheduled_item_id: uuid.UUID | None
    decision_id: uuid.UUID | None
    option_id: str | None
    title: str
    body: str
    deep_link: str | None
    data: dict[str, str]
    created_at: datetime
    expires_at: datetime | None


class PendingOut(Schema):
    model_config = ConfigDict(
        json_schema_extra=examples(
            {
                "prompts": [_PROMPT],
                "interventions": [_INTERVENTION],
                "as_of": "2026-11-03T13:05:00Z",
            }
        )
    )

    prompts: list[PendingPromptOut] = Field(
        description="Unanswered EMA prompts that have not expired, oldest first."
    )
    interventions: list[PendingInterventionOut] = Field(
        description="Interventions still valid, newest first, whether or not their push arrived."
    )
    as_of: datetime
