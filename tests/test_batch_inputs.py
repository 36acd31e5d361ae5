"""The phone's batch items map field for field onto the domain inputs they become."""

import dataclasses

import pytest
from pydantic import BaseModel

from app.api.schemas.ingest import EmaResponseIn, EngagementEventIn
from app.ema.ingest import EmaSubmission
from app.engagement.ingest import EventInput


@pytest.mark.parametrize(
    ("schema", "domain"), [(EmaResponseIn, EmaSubmission), (EngagementEventIn, EventInput)]
)
def test_schema_fields_are_the_domain_input_fields(schema: type[BaseModel], domain: type) -> None:
    fields = {f.name for f in dataclasses.fields(domain)} - {"index"}
    assert set(schema.model_fields) == fields
