"""Export jobs written straight to the database, for tests of what reads them."""

import uuid
from datetime import datetime
from typing import Any

from app.export.models import ExportJob


def export_job(study_id: uuid.UUID, created_at: datetime, **values: Any) -> ExportJob:
    """A decisions CSV job requested by a test (pending unless ``status`` says otherwise)."""
    return ExportJob(
        study_id=study_id,
        dataset="decisions",
        format="csv",
        filters={},
        requested_by="test",
        created_at=created_at,
        **values,
    )
