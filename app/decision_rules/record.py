"""The decision-log row, typed: one field per column of ``decisions``.

The engine builds one record per decision, once, from what it decided, and writes a batch
of them in one bulk insert (``vars(record)`` is the row). A test holds the fields and the
table's columns equal, so a column added to one and not the other fails there, not in the
insert.
"""

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class DecisionRecord:
    id: uuid.UUID
    participant_id: uuid.UUID
    study_id: uuid.UUID
    scheduled_item_id: uuid.UUID | None
    decision_point_id: str
    decision_index: int | None
    planned_at: datetime
    decided_at: datetime
    local_time: str
    timezone: str
    protocol_version: int | None
    study_day: int | None
    stage: str | None
    track: str | None
    phase: str | None
    available: bool
    unavailable_reason: str | None
    tailoring: dict[str, Any]
    tailoring_defaulted: list[str]
    pai_recommendation: str | None
    rule_id: str | None
    declared_probabilities: dict[str, float]
    excluded: dict[str, str]
    probabilities: dict[str, float]
    randomized: bool
    seed: int | None
    draw: float | None
    option_id: str | None
    probability: float | None
    note: str | None
    fallback: bool
    error: str | None
    learning: dict[str, Any] | None
    dose: dict[str, Any] | None
    burden_factor: float
    created_at: datetime

    def row(self) -> dict[str, Any]:
        return dict(vars(self))
