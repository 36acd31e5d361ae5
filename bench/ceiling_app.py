"""The ceiling for bench/ingest.py: the least an EMA ingestion endpoint can do.

It parses the same JSON and inserts the same rows (responses and answers) into the same
database with the same pool, but checks nothing: no authentication, no protocol, no
duplicates, no time bounds, no escalations. Served by uvicorn with the same settings as
Kairos. Two ways to insert, one route each:

- ``/ingest/…``: SQLAlchemy executemany, one bind parameter per value: the minimal
  endpoint, and bench/ingest.py's default;
- ``/ingest-json/…``: one statement with both tables' rows as two JSON documents, the way
  Kairos inserts on PostgreSQL (app/ema/ingest.py), less the duplicate check: a stronger
  ceiling, for a stricter comparison (``--ceiling json``).

Run: KAIROS_DATABASE_URL=… uvicorn --factory bench.ceiling_app:create_ceiling_app
"""

import os
import uuid
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from fastapi import FastAPI
from pydantic_core import to_json

from app.core.batches import sa_table
from app.core.db import create_db_engine
from app.core.ids import new_id, new_id_hexes
from app.ema.models import EmaAnswer, EmaResponse

_INSERT_JSON = sa.text(
    """
WITH inserted AS (
    INSERT INTO ema_responses (
        id, participant_id, study_id, client_id, prompt_id, questionnaire_id,
        questionnaire_version, protocol_version, answered_at, utc_offset_minutes,
        received_at, late
    )
    SELECT r.id, CAST(:participant_id AS uuid), CAST(:study_id AS uuid), r.client_id, NULL,
        r.questionnaire_id, r.questionnaire_version, 1, r.answered_at, 0,
        CAST(:received_at AS timestamptz), false
    FROM json_to_recordset(CAST(:responses AS json)) AS r(
        id uuid, client_id varchar, questionnaire_id varchar, questionnaire_version integer,
        answered_at timestamptz
    )
    RETURNING id, questionnaire_id, answered_at
)
INSERT INTO ema_answers (
    id, response_id, participant_id, questionnaire_id, item_id, answered_at, value,
    numeric_value
)
SELECT a.id, inserted.id, CAST(:participant_id AS uuid), inserted.questionnaire_id,
    a.item_id, inserted.answered_at, a.value, a.numeric_value
FROM json_to_recordset(CAST(:answers AS json)) AS a(
    id uuid, response_id uuid, item_id varchar, value jsonb, numeric_value float8
)
JOIN inserted ON inserted.id = a.response_id
"""
)


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

    @app.post("/ingest-json/{study_id}/{participant_id}")
    def ingest_json(
        study_id: uuid.UUID, participant_id: uuid.UUID, body: dict[str, Any]
    ) -> dict[str, int]:
        items = body["items"]
        answer_ids = iter(new_id_hexes(sum(len(item["answers"]) for item in items)))
        responses, answers = [], []
        for item in items:
            response_id = str(new_id())
            responses.append(
                {
                    "id": response_id,
                    "client_id": item["client_id"],
                    "questionnaire_id": item["questionnaire_id"],
                    "questionnaire_version": item["questionnaire_version"],
                    "answered_at": item["answered_at"],
                }
            )
            for item_id, value in item["answers"].items():
                number = value if isinstance(value, int | float) else None
                answers.append(
                    {
                        "id": next(answer_ids),
                        "response_id": response_id,
                        "item_id": item_id,
                        "value": value,
                        "numeric_value": float(number) if number is not None else None,
                    }
                )
        params = {
            "participant_id": participant_id,
            "study_id": study_id,
            "received_at": datetime.now(UTC),
            "responses": to_json(responses).decode(),
            "answers": to_json(answers).decode(),
        }
        with engine.begin() as connection:
            connection.execute(_INSERT_JSON, params)
        return {"accepted": len(responses)}

    return app
