"""What ingestion batches share: per-item outcomes, time bounds and dialect-aware inserts.

A batch from the phone is judged item by item: each is accepted, a duplicate of data already
stored (same client id), or rejected with the reasons. One bad item never costs the others.
"""

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

# Keep IN lists well under every backend's bind-parameter limit.
IN_CHUNK = 1000


class ItemStatus(StrEnum):
    accepted = "accepted"
    duplicate = "duplicate"
    rejected = "rejected"


@dataclass(frozen=True)
class ItemProblem:
    """``field`` is relative to the item (``answers.pain``); the API prefixes the item path."""

    field: str
    message: str


@dataclass
class ItemResult:
    index: int
    client_id: str | None
    status: ItemStatus
    id: uuid.UUID | None = None
    errors: list[ItemProblem] = field(default_factory=list)
    # EMA responses: answered after the prompt expired.
    late: bool | None = None
    # Wearable summaries: an earlier value for the same period was replaced.
    replaced: bool | None = None
    # EMA responses: an answer raised an alert whose escalation declares what the
    # participant must be shown at once ({"text": …, "link": …}).
    safety_response: dict[str, str | None] | None = None


class Enrolled(Protocol):
    """What ``TimeBounds`` reads of a participant (``participants.models.Participant``);
    a structural type, so that core does not import the participants package."""

    @property
    def enrolled_at(self) -> datetime | None: ...

    @property
    def created_at(self) -> datetime: ...


def rejected(index: int, client_id: str | None, problems: Iterable[ItemProblem]) -> ItemResult:
    return ItemResult(index, client_id, ItemStatus.rejected, errors=list(problems))


@dataclass(frozen=True)
class TimeBounds:
    """Timestamps a participant's phone may report: not before enrollment, not in the future.

    Both ends allow for the phone's clock being off by ``skew``.
    """

    enrolled_at: datetime
    now: datetime
    skew: timedelta

    @classmethod
    def for_participant(cls, participant: Enrolled, now: datetime, skew: timedelta) -> "TimeBounds":
        # Only enrolled participants hold tokens; created_at is a floor should one not be.
        return cls(participant.enrolled_at or participant.created_at, now, skew)

    def problem(self, field_name: str, when: datetime) -> ItemProblem | None:
        if when > self.now + self.skew:
            return ItemProblem(
                field_name,
                f"{when.isoformat()} is in the future (now is {self.now.isoformat()}, "
                f"allowing {_minutes(self.skew)} of clock difference); check the phone's clock",
            )
        if when < self.enrolled_at - self.skew:
            return ItemProblem(
                field_name,
                f"{when.isoformat()} is before the participant enrolled "
                f"({self.enrolled_at.isoformat()})",
            )
        return None


def _minutes(delta: timedelta) -> str:
    return f"{int(delta.total_seconds() // 60)} min"


def dialect_insert(session: Session, table: sa.Table) -> Any:
    """An INSERT that supports ON CONFLICT on the session's backend (PostgreSQL or SQLite)."""
    if session.get_bind().dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def insert_new(
    session: Session, model: type[Any], rows: list[dict[str, Any]], unique: list[str]
) -> set[uuid.UUID]:
    """Insert rows, skipping those whose ``unique`` columns are already taken (stored
    earlier, or by a concurrent request); returns the ids of the rows inserted.

    One statement: ``INSERT … ON CONFLICT DO NOTHING RETURNING id`` says which rows went in
    (psycopg's pipelined executemany reports no row count, so it could not tell).
    """
    if not rows:
        return set()
    return set(session.scalars(_insert_new_statement(session, model, tuple(unique)), rows))


# Each phone's batch runs one: built once per table, key and backend.
_INSERTS_NEW: dict[tuple[str, tuple[str, ...], str], Any] = {}


def _insert_new_statement(session: Session, model: type[Any], unique: tuple[str, ...]) -> Any:
    table = sa_table(model)
    key = (table.name, unique, session.get_bind().dialect.name)
    stmt = _INSERTS_NEW.get(key)
    if stmt is None:
        stmt = _INSERTS_NEW[key] = (
            dialect_insert(session, table)
            .on_conflict_do_nothing(index_elements=list(unique))
            .returning(table.c.id)
        )
    return stmt


def sa_table(model: type[Any]) -> sa.Table:
    """The Core table of a model, for set-based inserts."""
    table = model.__table__
    if not isinstance(table, sa.Table):  # pragma: no cover - every model maps one table
        raise TypeError(f"{model.__name__} is not mapped to a table")
    return table


def chunks(values: list[Any], size: int = IN_CHUNK) -> Iterable[list[Any]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]
