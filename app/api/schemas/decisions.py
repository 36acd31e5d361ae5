import uuid
from datetime import datetime
from typing import Any

from pydantic import ConfigDict, Field

from app.api.schemas.common import DbInt, JsonData, Schema, Text, Version, examples

_DECISION_EXAMPLE: dict[str, Any] = {
    "id": "019a8b5e-5e3b-7d4c-9f60-7b8c9d0e1f2a",
    "participant_id": "019a8b5e-4d2a-7c3b-8e5f-6a7b8c9d0e1f",
    "decision_point_id": "afternoon",
    "decision_index": 12,
    "planned_at": "2026-11-05T13:00:00Z",
    "decided_at": "2026-11-05T13:00:02Z",
    "local_time": "2026-11-05T14:00:02+01:00",
    "timezone": "Europe/Berlin",
    "protocol_version": 1,
    "study_day": 2,
    "stage": "stage_1",
    "track": None,
    "phase": "self_management",
    "available": True,
    "unavailable_reason": None,
    "tailoring": {"interference_today": 7.0, "acceptance_today": 2.0, "steps_3h": -1},
    "tailoring_defaulted": ["steps_3h"],
    "pai_recommendation": "pain_acceptance",
    "rule_id": "low_acceptance_high_interference",
    "declared_probabilities": {"pain_acceptance": 0.6, "nothing": 0.4},
    "excluded": {},
    "probabilities": {"pain_acceptance": 0.6, "nothing": 0.4},
    "randomized": True,
    "seed": 2122268929838072694,
    "draw": 0.1242,
    "option_id": "pain_acceptance",
    "probability": 0.6,
    "note": None,
    "fallback": False,
    "error": None,
    "learning": None,
    "burden_factor": 1.0,
    "notification_id": "019a8b5e-5e3c-7000-8000-7b8c9d0e1f2b",
    "delivery_status": "sent",
    "sent_at": "2026-11-05T13:00:05Z",
    "engagement": [{"kind": "prompt_opened", "occurred_at": "2026-11-05T13:20:00Z"}],
    "outcomes": {"next_interference": 5, "steps_60m": None, "exercise_done": True},
}


class EngagementOut(Schema):
    model_config = ConfigDict(
        json_schema_extra=examples({"kind": "prompt_opened", "occurred_at": "2026-11-05T13:20:00Z"})
    )

    kind: str
    occurred_at: datetime


class DecisionOut(Schema):
    model_config = ConfigDict(json_schema_extra=examples(_DECISION_EXAMPLE))

    id: uuid.UUID
    participant_id: uuid.UUID
    decision_point_id: str
    decision_index: int | None = Field(description="The MRT decision index.")
    planned_at: datetime
    decided_at: datetime
    local_time: str = Field(description="The participant's wall-clock time at the decision.")
    timezone: str
    protocol_version: int | None
    study_day: int | None
    stage: str | None
    track: str | None
    phase: str | None = Field(description="The treatment phase (null without phases).")
    available: bool
    unavailable_reason: str | None
    tailoring: dict[str, Any] = Field(
        description="Tailoring variables as the rules saw them (null: no data, no default)."
    )
    tailoring_defaulted: list[str] = Field(description="Variables that took their default.")
    pai_recommendation: str | None
    rule_id: str | None
    declared_probabilities: dict[str, float]
    excluded: dict[str, str] = Field(description="Option id -> why it got probability 0.")
    probabilities: dict[str, float] = Field(description="The probabilities the draw used.")
    randomized: bool
    seed: int | None
    draw: float | None = Field(description="The uniform number in [0, 1) the seed gives.")
    option_id: str | None
    probability: float | None = Field(description="Probability of the chosen option.")
    note: str | None
    fallback: bool
    error: str | None
    learning: dict[str, Any] | None = Field(
        default=None,
        description="What a learning policy did (null for rule-table decisions): "
        "posterior_id, features, effect_mean, effect_variance, probability_unclipped, "
        "probability_clipped, fallback, fallback_reason (docs/learning-policies.md).",
    )
    burden_factor: float | None = Field(
        default=None,
        description="The burden factor in force: 1, or the fatigue response's "
        "prompt_budget_factor while a fatigue episode was open (docs/monitoring.md); null "
        "for decisions logged before it was kept.",
    )
    notification_id: uuid.UUID | None = Field(description="The push created, if any.")
    delivery_status: str | None
    sent_at: datetime | None
    engagement: list[EngagementOut]
    outcomes: dict[str, Any] = Field(
        description="Proximal outcomes by name; null while the window is open or without data."
    )


class DecisionPage(Schema):
    model_config = ConfigDict(
        json_schema_extra=examples({"items": [_DECISION_EXAMPLE], "next_cursor": None})
    )

    items: list[DecisionOut]
    next_cursor: uuid.UUID | None = Field(
        description="Pass as `cursor` to get the next page; null on the last page."
    )


class PreviewRequest(Schema):
    model_config = ConfigDict(
        json_schema_extra=examples(
            {
                "decision_point": "afternoon",
                "local_time": "2026-11-05T14:00:00",
                "tailoring": {
                    "interference_today": 7,
                    "acceptance_today": 2,
                    "steps_3h": None,
                    "sleep_last_night": 420,
                    "prompts_today": 0,
                    "days_enrolled": 5,
                    "pain_mean_7d": 6.5,
                    "pain_baseline": 7.0,
                },
                "attributes": {
                    "trauma_history": False,
                    "pain_phenotype": "nociplastic",
                    "age": 52,
                    "baseline_interference": 6,
                },
            }
        )
    )

    decision_point: Text = Field(description="Id of a decision point of the protocol.")
    local_time: datetime = Field(
        description="The participant's wall-clock time (an offset, if given, is ignored)."
    )
    tailoring: dict[Text, JsonData] = Field(
        description="A value for every tailoring variable not read from attributes; null "
        "means 'no data' (the default applies, or the participant is unavailable)."
    )
    attributes: dict[Text, JsonData] = Field(
        default_factory=dict, description="Participant attributes, checked like at onboarding."
    )
    study_day: DbInt = Field(1, ge=0, description="Study day, for the SMART stage.")
    track: Text | None = Field(None, description="SMART track (default: none yet).")
    phase: Text | None = Field(
        None, description="Treatment phase (default: the protocol's initial phase)."
    )
    prompts_today: DbInt = Field(
        0, ge=0, description="Intervention prompts already delivered today."
    )
    pushes_today: DbInt = Field(
        0,
        ge=0,
        description="All pushes so far today (EMA prompts, reminders, interventions), for "
        "the protocol's max_pushes_per_day.",
    )
    minutes_since_last_prompt: DbInt | None = Field(
        None, ge=0, description="Minutes since the last delivered prompt (null: none)."
    )
    later_decision_points: DbInt | None = Field(
        None,
        ge=0,
        description="Decision points still planned later that day, for the protocol's dose "
        "constraint (null: counted from the protocol's decision-point times).",
    )
    protocol_version: Version | None = Field(
        None, description="Protocol version to evaluate (default: the active one)."
    )


class OptionConsideredOut(Schema):
    model_config = ConfigDict(
        json_schema_extra=examples(
            {
                "option_id": "mindfulness",
                "category": "mindfulness",
                "declared_probability": 0.3,
                "probability": 0.0,
                "contraindicated": True,
                "excluded_because": "contraindicated",
            }
        )
    )

    option_id: str
    category: str
    declared_probability: float | None = Field(
        description="What the deciding rule declared; null if it does not name the option."
    )
    probability: float = Field(description="After exclusions, weights and bounds.")
    contraindicated: bool | None = Field(
        description="Whether the option is contraindicated for these attributes (null: the "
        "contraindication could not be evaluated)."
    )
    excluded_because: str | None


class PreviewResponse(Schema):
    model_config = ConfigDict(
        json_schema_extra=examples(
            {
                "protocol_version": 1,
                "decision_point": "afternoon",
                "local_time": "2026-11-05T14:00:00+01:00",
                "weekday": "thu",
                "local_hour": 14,
                "stage": "stage_1",
                "track": "",
                "phase": "self_management",
                "pai_recommendation": "pain_acceptance",
                "pai_scores": {"pain_acceptance": 7.54, "cbt_skill": 7.98},
                "tailoring": {"interference_today": 7.0, "acceptance_today": 2.0},
                "tailoring_defaulted": ["steps_3h"],
                "available": True,
                "unavailable_reason": None,
                "rule_id": "low_acceptance_high_interference",
                "randomized": True,
                "probabilities": {"pain_acceptance": 0.6, "nothing": 0.4},
                "note": None,
                "fallback": False,
                "error": None,
                "options": [
                    {
                        "option_id": "pain_acceptance",
                        "category": "pain_acceptance",
                        "declared_probability": 0.6,
                        "probability": 0.6,
                        "contraindicated": False,
                        "excluded_because": None,
                    }
                ],
            }
        )
    )

    protocol_version: int
    decision_point: str
    local_time: datetime
    weekday: str
    local_hour: int
    stage: str
    track: str
    phase: str = Field(description='The treatment phase evaluated ("" without phases).')
    pai_recommendation: str
    pai_scores: dict[str, float]
    tailoring: dict[str, Any] = Field(description="Values as rules see them, defaults applied.")
    tailoring_defaulted: list[str]
    available: bool
    unavailable_reason: str | None
    rule_id: str | None
    randomized: bool
    probabilities: dict[str, float]
    note: str | None
    fallback: bool
    error: str | None
    learning: dict[str, Any] | None = Field(
        None,
        description="What the learning policy did, with the study's current posterior "
        "(null for rule-table decisions); as in the decision log.",
    )
    dose: dict[str, Any] | None = Field(
        None,
        description="What the dose constraint did (null where it does not apply); as in "
        "the decision log.",
    )
    options: list[OptionConsideredOut] = Field(description="Every option of the protocol.")


_POSTERIOR_EXAMPLE: dict[str, Any] = {
    "id": "019a8b5e-6f00-7000-8000-7b8c9d0e1f3c",
    "study_id": "019a8b5e-4d2a-7c3b-8e5f-6a7b8c9d0e10",
    "protocol_version": 1,
    "previous_id": "019a8b5e-6e00-7000-8000-7b8c9d0e1f3b",
    "scheduled_for": "2026-11-06T02:00:00Z",
    "computed_at": "2026-11-06T02:00:03Z",
    "inputs_from": "2026-11-04T22:00:00Z",
    "inputs_to": "2026-11-05T22:00:00Z",
    "rows_used": 2,
    "rows_total": 54,
    "noise_variance": 2.25,
    "coefficients": [
        "baseline:intercept",
        "baseline:interference_today",
        "effect:intercept",
        "effect:interference_today",
    ],
    "mean": [1.1, 0.78, -0.4, 0.02],
    "covariance": [
        [0.5, -0.06, 0.0, 0.0],
        [-0.06, 0.01, 0.0, 0.0],
        [0.0, 0.0, 0.3, -0.03],
        [0.0, 0.0, -0.03, 0.004],
    ],
}


class PosteriorOut(Schema):
    model_config = ConfigDict(json_schema_extra=examples(_POSTERIOR_EXAMPLE))

    id: uuid.UUID
    study_id: uuid.UUID
    protocol_version: int
    previous_id: uuid.UUID | None = Field(
        description="The posterior this one updated (null: it updated the prior)."
    )
    scheduled_for: datetime = Field(description="The update's due time (the cadence).")
    computed_at: datetime
    inputs_from: datetime | None = Field(
        description="The new rows were decided after this (null: from the start) ..."
    )
    inputs_to: datetime = Field(description="... and up to and including this.")
    rows_used: int = Field(description="Decisions with an outcome this update added.")
    rows_total: int = Field(description="Decisions with an outcome over the whole chain.")
    noise_variance: float
    coefficients: list[str] = Field(description="The names of the mean's entries, in order.")
    mean: list[float]
    covariance: list[list[float]]


class ParticipantPosteriorOut(Schema):
    model_config = ConfigDict(
        json_schema_extra=examples(
            {
                "posterior_id": _POSTERIOR_EXAMPLE["id"],
                "participant_id": "019a8b5e-5e3b-7d4c-9f60-7b8c9d0e1f00",
                "protocol_version": 1,
                "participant_rows": 12,
                "coefficients": _POSTERIOR_EXAMPLE["coefficients"],
                "mean": [1.3, 0.7, -0.9, 0.01],
                "covariance": _POSTERIOR_EXAMPLE["covariance"],
                "pooled_mean": _POSTERIOR_EXAMPLE["mean"],
            }
        )
    )

    posterior_id: uuid.UUID = Field(description="The study's current posterior.")
    participant_id: uuid.UUID
    protocol_version: int
    participant_rows: int = Field(
        description="The participant's own rows with an outcome it rests on (0: the pool's "
        "coefficients with the spread between participants)."
    )
    coefficients: list[str] = Field(description="The names of the mean's entries, in order.")
    mean: list[float] = Field(description="The participant's own coefficients.")
    covariance: list[list[float]]
    pooled_mean: list[float] = Field(description="The pooled coefficients, for comparison.")


class PosteriorDetail(PosteriorOut):
    model_config = ConfigDict(
        json_schema_extra=examples(
            {
                **_POSTERIOR_EXAMPLE,
                "inputs": [
                    ["019a8b5e-5e3b-7d4c-9f60-7b8c9d0e1f2a", 5.0],
                    ["019a8b5e-5e3b-7d4c-9f60-7b8c9d0e1f2b", 3.0],
                ],
            }
        )
    )

    inputs: list[list[Any]] = Field(
        description="[decision id, outcome] of every decision this update added, in the "
        "order used (docs/learning-policies.md: recomputing a posterior)."
    )


class PosteriorPage(Schema):
    model_config = ConfigDict(
        json_schema_extra=examples({"items": [_POSTERIOR_EXAMPLE], "next_cursor": None})
    )

    items: list[PosteriorOut] = Field(description="Newest first.")
    next_cursor: uuid.UUID | None = Field(
        description="Pass as `cursor` to get the next page; null on the last page."
    )
