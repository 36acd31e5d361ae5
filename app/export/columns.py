"""What an export's columns are: name, type, unit and meaning (the data dictionary's rows)."""

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

# One exported row: values in the order of its dataset's columns.
Row = Sequence[Any]


class ColumnType(StrEnum):
    string = "string"
    integer = "integer"
    number = "number"
    boolean = "boolean"
    timestamp = "timestamp"  # ISO 8601 in UTC in text formats; timestamp[us, UTC] in Parquet
    json = "json"  # a JSON document as text (attributes, answers that are lists)


@dataclass(frozen=True)
class Column:
    name: str
    type: ColumnType
    meaning: str
    unit: str | None = None

    def as_dict(self) -> dict[str, str | None]:
        return {"name": self.name, "type": self.type, "unit": self.unit, "meaning": self.meaning}


@dataclass(frozen=True)
class Filters:
    """Which rows an export holds; an empty selection means everything in the study."""

    participant_ids: tuple[uuid.UUID, ...] = ()
    start: datetime | None = None  # inclusive
    end: datetime | None = None  # exclusive
    protocol_version: int | None = None

    def as_dict(self) -> dict[str, object]:
        return {
            "participant_ids": [str(p) for p in self.participant_ids],
            "start": self.start.isoformat() if self.start else None,
            "end": self.end.isoformat() if self.end else None,
            "protocol_version": self.protocol_version,
        }


def string(name: str, meaning: str) -> Column:
    return Column(name, ColumnType.string, meaning)


def integer(name: str, meaning: str, unit: str | None = None) -> Column:
    return Column(name, ColumnType.integer, meaning, unit)


def number(name: str, meaning: str, unit: str | None = None) -> Column:
    return Column(name, ColumnType.number, meaning, unit)


def boolean(name: str, meaning: str) -> Column:
    return Column(name, ColumnType.boolean, meaning)


def timestamp(name: str, meaning: str) -> Column:
    return Column(name, ColumnType.timestamp, meaning, "UTC")


def json_text(name: str, meaning: str) -> Column:
    return Column(name, ColumnType.json, meaning)
