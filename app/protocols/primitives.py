"""Building blocks shared by every section of a protocol document."""

import re
from datetime import time
from enum import StrEnum
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    StrictFloat,
    StrictInt,
    WithJsonSchema,
)


class ProtocolModel(BaseModel):
    """Base of every protocol model: unknown keys are typos, and a loaded protocol is a
    snapshot that the engine must not mutate behind the version number's back."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)


ID_PATTERN = r"^[A-Za-z][A-Za-z0-9_-]{0,63}$"
# Names that appear inside CEL expressions must be CEL identifiers (no dashes).
NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]{0,63}$"

Identifier = Annotated[
    str,
    Field(
        pattern=ID_PATTERN,
        description="Letters, digits, '_' or '-', starting with a letter (max 64).",
    ),
]
CelName = Annotated[
    str,
    Field(
        pattern=NAME_PATTERN,
        description="A name usable in CEL expressions: letters, digits and '_' (max 64).",
    ),
]
CelExpression = Annotated[
    str,
    Field(
        min_length=1,
        max_length=2000,
        description="A CEL expression; see docs/protocols.md for what it can use.",
    ),
]
# bool is an int in Python; a rating bound of `true` is a mistake, not 1.
Number = StrictInt | StrictFloat
NonNegativeInt = Annotated[StrictInt, Field(ge=0)]
PositiveInt = Annotated[StrictInt, Field(ge=1)]

_HHMM = re.compile(r"^([01][0-9]|2[0-3]):([0-5][0-9])$")


def _parse_local_time(value: Any) -> Any:
    if isinstance(value, time):
        return value
    if isinstance(value, str):
        match = _HHMM.match(value)
        if match:
            return time(int(match[1]), int(match[2]))
    raise ValueError(f"expected a local time as HH:MM between 00:00 and 23:59, got {value!r}")


LocalTime = Annotated[
    time,
    BeforeValidator(_parse_local_time),
    PlainSerializer(lambda t: t.strftime("%H:%M"), return_type=str),
    WithJsonSchema({"type": "string", "pattern": _HHMM.pattern, "examples": ["08:00"]}),
]
"""A wall-clock time in the participant's time zone, written "HH:MM" (24-hour)."""


def minute_of_day(t: time) -> int:
    return t.hour * 60 + t.minute


def format_minute(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


class Weekday(StrEnum):
    mon = "mon"
    tue = "tue"
    wed = "wed"
    thu = "thu"
    fri = "fri"
    sat = "sat"
    sun = "sun"

    @property
    def iso_index(self) -> int:
        """0 for Monday, as `datetime.weekday()` returns."""
        return list(Weekday).index(self)


ALL_WEEKDAYS: tuple[Weekday, ...] = tuple(Weekday)
