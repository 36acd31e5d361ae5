"""A decision's moment: everything about it besides the tailoring variables."""

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from app.decision_rules.dose import DoseHistory
from app.decision_rules.learning import Posterior


@dataclass(frozen=True)
class Moment:
    """Everything about the decision besides the tailoring variables."""

    decision_point: str
    # The participant's wall-clock time (aware, in their zone).
    local: datetime
    attributes: Mapping[str, Any]
    stage: str = ""
    track: str = ""
    # The participant's treatment phase ("" without phases).
    phase: str = ""
    pai_recommendation: str = ""
    # Burden: intervention prompts created today (local day) and the last one's time.
    prompts_today: int = 0
    last_prompt_at: datetime | None = None
    # Every push due today (local day) so far, EMA prompts, reminders and interventions,
    # and the scheduled EMA prompts still to come today.
    pushes_today: int = 0
    # Scales the daily cap (the protocol's automatic response to treatment fatigue).
    prompt_budget_factor: float = 1.0
    # The current posterior of the study's learning policy (None: none yet, or no
    # learning policy). Compared by identity: it holds numpy arrays.
    posterior: Posterior | None = field(default=None, compare=False)
    # The rest of the participant's day and their recent availability, for the dose
    # constraint (``policy.dose``).
    dose_history: DoseHistory = field(default_factory=DoseHistory)
    # The participant (their id as text; empty in a preview), for per-participant posteriors.
    participant: str = ""
