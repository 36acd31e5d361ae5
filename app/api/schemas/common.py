import re
from typing import Annotated, Any, ClassVar

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
)
from pydantic.config import JsonDict

from app.core.timezones import is_known_timezone


def _check_timezone(value: str) -> str:
    if not is_known_timezone(value):
        raise ValueError(
            f"unknown IANA time zone '{value}'; use a name like 'Europe/Berlin' "
            "or 'America/Chicago'"
        )
    return value


Timezone = Annotated[
    str,
    Field(description="An IANA time zone name.", examples=["Europe/Berlin"]),
    AfterValidator(_check_timezone),
]

SLUG_PATTERN = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
Slug = Annotated[
    str,
    StringConstraints(min_length=2, max_length=64, pattern=SLUG_PATTERN.pattern),
    Field(description="Lowercase letters, digits and dashes.", examples=["pain-jitai-2026"]),
]

NonEmptyText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]


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
