"""What a tailoring source is on the database side, and the subject it is read for.

A source reads its variables for a whole batch of decisions at once: variables of the same
``shape`` read the same rows and share one query over a bounds table (one row per
participant's window). A source whose values need no query (the study day, an attribute)
gives ``shape`` None and answers ``value`` per subject.
"""

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from typing import Any, ClassVar
from typing import Protocol as Interface
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from app.decision_rules.bounds import Bound
from app.decision_rules.calendar import start_of_local_day
from app.protocols.document import Protocol, TailoringVariable

# Per bounds key: count, mean, sum, min, max (aggregate shapes) or the latest value.
Row = dict[str, Any]


@dataclass(frozen=True)
class Subject:
    """Whose variables to compute, and when."""

    participant_id: uuid.UUID
    at: datetime
    zone: ZoneInfo
    enrolled_at: datetime | None
    attributes: Mapping[str, Any]
    protocol: Protocol

    @cached_property
    def today_start(self) -> datetime:
        """Local midnight of the decision's day (several variables use it)."""
        return start_of_local_day(self.at, self.zone)


class SourceReader(Interface):
    # The protocol's ``source:`` value this reader reads.
    source: ClassVar[str]

    def shape(self, variable: TailoringVariable) -> tuple[str, ...] | None:
        """Variables with the same shape share one query; None: no query (see value)."""
        ...

    def query(
        self, session: Session, shape: tuple[str, ...], bounds: Sequence[Bound]
    ) -> dict[int, Row]:
        """The rows of every window in ``bounds``, by bounds key (windows without data
        left out)."""
        ...

    def pick(self, variable: TailoringVariable, row: Row | None) -> Any:
        """The variable's raw value from its window's row (None: no data)."""
        ...

    def value(self, subject: Subject, variable: TailoringVariable) -> Any:
        """The raw value of a variable read without a query (None: no data)."""
        ...


class Unqueried:
    """A source whose values come from the subject itself (no query): it has no shape and
    answers ``value``."""

    source: ClassVar[str]

    def shape(self, variable: TailoringVariable) -> None:
        return None

    def query(
        self, session: Session, shape: tuple[str, ...], bounds: Sequence[Bound]
    ) -> dict[int, Row]:
        raise TypeError(f"{self.source} variables need no query")

    def pick(self, variable: TailoringVariable, row: Row | None) -> Any:
        raise TypeError(f"{self.source} variables need no query")


class Queried:
    """A source read by query for the whole batch; ``value`` is never asked."""

    source: ClassVar[str]

    def value(self, subject: Subject, variable: TailoringVariable) -> Any:
        raise TypeError(f"{self.source} variables are read by query")
