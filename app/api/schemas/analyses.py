import uuid
from typing import Annotated, Any

from pydantic import ConfigDict, Field, StringConstraints

from app.analysis.emee import OutcomeType
from app.api.schemas.common import CheckText, Instant, Schema, Version, examples

Name = Annotated[str, StringConstraints(max_length=200), CheckText]


class MrtAnalysisRequest(Schema):
    model_config = ConfigDict(
        json_schema_extra=examples(
            {
                "outcome": "next_interference",
                "option": "pain_acceptance",
                "moderators": ["interference_today"],
                "controls": ["acceptance_today"],
                "numerator_prob": 0.5,
            }
        )
    )

    outcome: Name = Field(description="A proximal outcome of the protocol (its name).")
    option: Name | None = Field(
        None,
        description="Estimate the effect of this intervention option versus the rest; "
        "default: any prompt versus none.",
    )
    moderators: list[Name] = Field(
        default_factory=list, description="Tailoring variables that may moderate the effect."
    )
    controls: list[Name] = Field(
        default_factory=list, description="Tailoring variables that explain the outcome."
    )
    numerator_prob: float | None = Field(
        None,
        gt=0,
        lt=1,
        description="p~ of the weights; default: the randomization probability when it is "
        "constant, else 0.5.",
    )
    confidence: float = Field(0.95, gt=0, lt=1)
    small_sample_correction: bool = Field(
        True, description="Small-sample correction of the sandwich variance."
    )
    outcome_type: OutcomeType = Field(
        OutcomeType.continuous,
        description="continuous: WCLS, an additive effect; binary: EMEE (Qian et al. 2021), "
        "the log relative risk of a 0/1 outcome (e.g. engagement), numerator probability "
        "0.5 by default.",
    )
    participant_ids: list[uuid.UUID] = Field(default_factory=list)
    start: Instant | None = None
    end: Instant | None = None
    protocol_version: Version | None = None


class MrtAnalysisResult(Schema):
    model_config = ConfigDict(
        json_schema_extra=examples(
            {
                "outcome": "next_interference",
                "treatment": "pain_acceptance",
                "coefficients": [
                    {
                        "name": "(Intercept)",
                        "estimate": -0.42,
                        "std_error": 0.15,
                        "ci_low": -0.72,
                        "ci_high": -0.12,
                        "t_statistic": -2.8,
                        "f_statistic": 7.84,
                        "df1": 1,
                        "df2": 34,
                        "p_value": 0.0084,
                    }
                ],
                "n_participants": 37,
                "n_decisions": 5200,
            }
        )
    )

    outcome: str
    treatment: str = Field(description="The option analysed, or 'any prompt'.")
    method: str = Field("wcls", description="wcls or emee.")
    scale: str = Field(
        "difference in means", description="difference in means, or log relative risk."
    )
    coefficients: list[dict[str, Any]] = Field(
        description="The effect (intercept) and each moderator's coefficient: estimate, "
        "standard error, confidence interval, t and F statistics, degrees of freedom, p-value."
    )
    moderators: list[str]
    controls: list[str]
    numerator_prob: float
    confidence: float
    small_sample_correction: bool
    n_participants: int
    n_decisions: int
    n_rows: int
    n_unavailable: int
    n_missing_outcome: int
    df: int
