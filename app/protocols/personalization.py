"""Onboarding personalization: preferences and a Personalized Advantage Index model."""

from collections.abc import Mapping
from enum import StrEnum
from typing import Any

from pydantic import Field

from app.protocols.primitives import Identifier, ProtocolModel


class PreferenceMode(StrEnum):
    restrict = "restrict"
    """Only options in a preferred category may be delivered (category none always may)."""
    weight = "weight"
    """Preferred options' randomization probabilities are multiplied by `weight`, then
    renormalized and clipped."""


class Preferences(ProtocolModel):
    """How shared-decision-making preferences shape option choice."""

    attribute: Identifier
    """A multi_choice participant attribute whose choices are option categories."""
    mode: PreferenceMode
    """restrict or weight. An empty preference list never restricts."""
    weight: float = Field(default=2.0, gt=0)
    """Multiplier for preferred options in weight mode."""


class PaiTreatment(ProtocolModel):
    """A linear model of the predicted outcome under one treatment."""

    intercept: float = 0.0
    """Predicted outcome when every attribute term is zero."""
    coefficients: dict[str, float] = Field(default_factory=dict)
    """Attribute name -> coefficient. Numbers enter as is, booleans as 0/1; for a choice
    attribute write "name=value" (1 when the participant has that value, else 0)."""

    def predict(self, attributes: Mapping[str, Any]) -> float:
        total = self.intercept
        for term, coefficient in self.coefficients.items():
            name, _, level = term.partition("=")
            value = attributes[name]
            x = float(value == level) if level else float(value)
            total += coefficient * x
        return total


class PaiModel(ProtocolModel):
    """A Personalized Advantage Index: predicts each participant's outcome under each
    treatment at enrollment; the best prediction is the recommended starting treatment,
    which rules see as `pai_recommendation`."""

    outcome: str = Field(min_length=1)
    """What is predicted, e.g. "pain interference at week 12"."""
    lower_is_better: bool = True
    """Whether a lower predicted outcome is better (true for pain and disability)."""
    treatments: dict[Identifier, PaiTreatment]
    """Option id -> linear model (at least two)."""

    def predict(self, attributes: Mapping[str, Any]) -> dict[str, float]:
        return {option: t.predict(attributes) for option, t in self.treatments.items()}

    def recommend(self, attributes: Mapping[str, Any]) -> str:
        """The option with the best predicted outcome (ties go to the first listed)."""
        predictions = self.predict(attributes)
        sign = 1.0 if self.lower_is_better else -1.0
        return min(predictions, key=lambda option: sign * predictions[option])


class Personalization(ProtocolModel):
    """Inter-patient personalization configured at onboarding."""

    preferences: Preferences | None = None
    """How preferences restrict or weight options."""
    pai: PaiModel | None = None
    """A Personalized Advantage Index model recommending a starting treatment."""
