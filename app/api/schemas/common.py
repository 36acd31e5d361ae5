import re
from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar

from annotated_types import Ge, Le
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
)
from pydantic.config import JsonDict

from app.core.text import check_data, check_text
from app.core.timezones import is_known_timezone

# -- the input types every request schema, query and path parameter is built from ---------

CheckText = AfterValidator(check_text)
"""The check of text from outside: no NUL character, no lone surrogate (app/core/text.py).
Put it after StringConstraints that strip whitespace, so lengths count the stripped text."""

Text = Annotated[str, CheckText]
"""Text from outside; every str of a request is this, or a str annotated with CheckText."""

JsonData = Annotated[Any, AfterValidator(check_data)]
"""Free-form JSON data from outside: text as `Text`, numbers within 64 bits and finite,
nesting at most app.core.text.MAX_DATA_DEPTH deep."""

INT4_MAX = 2**31 - 1
"""The largest INTEGER of PostgreSQL (and of the columns that store these numbers)."""

DbInt = Annotated[int, Ge(-INT4_MAX - 1), Le(INT4_MAX)]
"""An integer that an INTEGER column can hold (PostgreSQL's int4)."""

Version = Annotated[int, Ge(1), Le(INT4_MAX)]
"""A protocol or questionnaire version: 1, 2, … (stored as INTEGER)."""


def _in_the_calendar(value: datetime) -> datetime:
    try:
        value.astimezone(UTC)
    except OverflowError as exc:
        raise ValueError(
            "the time lies outside the supported dates (years 1 to 9999 in UTC)"
        ) from exc
    return value


Instant = Annotated[AwareDatetime, AfterValidator(_in_the_calendar)]
"""A point in time with its UTC offset, whose UTC time lies within years 1..9999."""


def _check_timezone(value: str) -> str:
    if not is_known_timezone(value):
        raise ValueError(
            f"unknown IANA time zone '{value}'; use a name like 'Europe/Berlin' "
            "or 'America/Chicago'"
        )
    return value


Timezone = Annotated[
    Text,
    Field(description="An IANA time zone name.", examples=["Europe/Berlin"]),
    AfterValidator(_check_timezone),
]

SLUG_PATTERN = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
Slug = Annotated[
    str,
    StringConstraints(min_length=2, max_length=64, pattern=SLUG_PATTERN.pattern),
    CheckText,
    Field(description="Lowercase letters, digits and dashes.", examples=["pain-jitai-2026"]),
]

NonEmptyText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1), CheckText]


def examples(*items: Any) -> JsonDict:
    """``json_schema_extra`` for a schema: the examples /docs shows."""
    return {"examples": list(items)}


class Schema(BaseModel):
    """Base for API bodies: unknown fields are refused, not silently dropped."""

    model_config = ConfigDict(extra="forbid", from_attributes=True)


class OkResponse(Schema):
    model_config = ConfigDict(json_schema_extra=examples({"status": "ok"}))

    status: str = "ok"


class PatchSchema(Schema):
    """A partial update: fields left out are unchanged; null is refused unless the field is
    listed in ``nullable`` (so a PATCH can never write null into a required column)."""

    nullable: ClassVar[frozenset[str]] = frozenset()

    @field_validator("*", mode="before")
    @classmethod
    def _no_null(cls, value: Any, info: ValidationInfo) -> Any:
        if value is None and info.field_name not in cls.nullable:
            raise ValueError("may not be null; leave the field out to keep its value")
        return value

    def changes(self) -> dict[str, Any]:
        return self.model_dump(exclude_unset=True)
