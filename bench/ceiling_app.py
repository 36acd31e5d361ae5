"""The ceiling for bench/ingest.py: the least an EMA ingestion endpoint can do.

It parses the same JSON and inserts the same rows (responses and answers) into the same
database with the same pool, but checks nothing: no authentication, no protocol, no
duplicates, no time bounds, no escalations. Served by uvicorn with the same settings as
Kairos. Run: KAIROS_DATABASE_URL=… uvicorn --factory bench.ceiling_app:create_ceiling_app
"""

import os
import uuid
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from fastapi import FastAPI

from app.core.batches import sa_table
from app.core.db import create_db_engine
from app.core.ids import new_id
from app.ema.models import EmaAnswer, EmaResponse


def create_ceiling_app() -> FastAPI:
    engine = create_db_engine(
        os.environ["KAIROS_DATABASE_URL"],
        pool_size=int(os.environ.get("KAIROS_DB_POOL_SIZE", "10")),
    )
    responses_table = sa_table(EmaResponse)
    answers_table = sa_table(EmaAnswer)
    app = FastAPI()

    @app.post("/ingest/{study_id}/{participant_id}")
    def ingest(
        study_id: uuid.UUID, participant_id: uuid.UUID, body: dict[str, Any]
    ) -> dict[str, int]:
        now = datetime.now(UTC)
        responses, answers = [], []
        for item in body["items"]:
            response_id = new_id()
            answered_at = datetime.fromisoformat(item["answered_at"])
            responses.append(
                {
                    "id": response_id,
                    "participant_id": participant_id,
                    "study_id": study_id,
                    "client_id": item["client_id"],
                    "prompt_id": None,
                    "questionnaire_id": item["questionnaire_id"],
                    "questionnaire_version": item["questionnaire_version"],
                    "protocol_version": 1,
                    "answered_at": answered_at,
                    "utc_offset_minutes": 0,
                    "received_at": now,
                    "late": False,
                }
            )
            for item_id, value in item["answers"].items():
                number = value if isinstance(value, int | float) else None
                answers.append(
                    {
                        "id": new_id(),
                        "response_id": response_id,
                        "participant_id": participant_id,
                        "questionnaire_id": item["questionnaire_id"],
                        "item_id": item_id,
                        "answered_at": answered_at,
                        "value": value,
                        "numeric_value": float(number) if number is not None else None,
                    }
                )
        with engine.begin() as connection:
            connection.execute(sa.insert(responses_table), responses)
            connection.execute(sa.insert(answers_table), answers)
        return {"accepted": len(responses)}

    return app
