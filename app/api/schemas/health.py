from datetime import datetime

from pydantic import ConfigDict, Field

from app.api.schemas.common import Schema, examples


class Liveness(Schema):
    model_config = ConfigDict(json_schema_extra=examples({"status": "ok", "version": "0.1.0"}))

    status: str = "ok"
    version: str


class WorkerStatus(Schema):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"worker_id": "host-a:4242", "last_tick_at": "2026-11-20T10:30:05Z"}]
        }
    )

    worker_id: str
    last_tick_at: datetime


class Readiness(Schema):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "status": "ok",
                    "database": "postgresql",
                    "schema_revision": "0001",
                    "workers_active": 1,
                    "workers": [
                        {"worker_id": "host-a:4242", "last_tick_at": "2026-11-20T10:30:05Z"}
                    ],
                }
            ]
        }
    )

    status: str = "ok"
    database: str = Field(description="The database backend in use.")
    schema_revision: str | None
    workers_active: int = Field(
        description="How many workers ticked in the last few minutes (informational)."
    )
    workers: list[WorkerStatus] | None = Field(
        description="Those workers, with their ids (host name and process id). In "
        "production only an admin's API key sees them; anyone else gets null."
    )
