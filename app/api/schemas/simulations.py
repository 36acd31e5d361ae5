import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import ConfigDict, Field, StringConstraints

from app.api.schemas.common import CheckText, Schema, Version, examples

_JOB_EXAMPLE = {
    "id": "019a8b5e-5e3b-7d4c-9f60-7b8c9d0e1f2a",
    "study_id": "019a8b5e-3c1f-7a2b-9d4e-5f6a7b8c9d0e",
    "protocol_version": 2,
    "participants": 50,
    "days": 28,
    "seed": 1,
    "status": "done",
    "error": None,
    "report": {"rules": {"never_fired": ["intensify"]}},
    "created_at": "2026-12-03T10:00:00Z",
    "started_at": "2026-12-03T10:00:02Z",
    "finished_at": "2026-12-03T10:01:45Z",
}


class SimulationRequest(Schema):
    model_config = ConfigDict(
        json_schema_extra=examples(
            {
                "participants": 50,
                "days": 28,
                "seed": 1,
                "behaviour": "answering: {probability: 0.8, weekly_change: -0.05}\n",
            }
        )
    )

    protocol_version: Version | None = Field(
        None, description="The stored version to simulate (default: the active one)."
    )
    participants: int = Field(50, ge=1, le=1000, description="Synthetic participants.")
    days: int = Field(28, ge=1, le=180, description="Study days to simulate.")
    seed: int = Field(1, ge=0, le=2**62, description="The same seed gives the same output.")
    behaviour: Annotated[str, StringConstraints(max_length=100_000), CheckText] = Field(
        "", description="The behaviour model as YAML (docs/simulation.md); empty: the default."
    )


class SimulationOut(Schema):
    model_config = ConfigDict(json_schema_extra=examples(_JOB_EXAMPLE))

    id: uuid.UUID
    study_id: uuid.UUID
    protocol_version: int
    participants: int
    days: int
    seed: int
    status: str = Field(description="pending, running, done or failed.")
    error: str | None
    report: dict[str, Any] | None = Field(
        description="The report (as report.json) once done; docs/simulation.md."
    )
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
