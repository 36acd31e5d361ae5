"""Whole days since enrollment, from the participant's record (no query)."""

from collections.abc import Sequence
from typing import Any, ClassVar

from sqlalchemy.orm import Session

from app.decision_rules.bounds import Bound
from app.decision_rules.calendar import study_day
from app.decision_rules.sources.base import Row, Subject
from app.protocols.document import TailoringVariable


class EnrollmentReader:
    source: ClassVar[str] = "enrollment"

    def shape(self, variable: TailoringVariable) -> None:
        return None

    def query(
        self, session: Session, shape: tuple[str, ...], bounds: Sequence[Bound]
    ) -> dict[int, Row]:
        raise TypeError("the study day needs no query")

    def pick(self, variable: TailoringVariable, row: Row | None) -> Any:
        raise TypeError("the study day needs no query")

    def value(self, subject: Subject, variable: TailoringVariable) -> Any:
        if subject.enrolled_at is None:
            return None
        return study_day(subject.at, subject.enrolled_at, subject.zone)
