"""Whole days since enrollment, from the participant's record (no query)."""

from typing import Any, ClassVar

from app.decision_rules.calendar import study_day
from app.decision_rules.sources.base import Subject, Unqueried
from app.protocols.document import TailoringVariable


class EnrollmentReader(Unqueried):
    source: ClassVar[str] = "enrollment"

    def value(self, subject: Subject, variable: TailoringVariable) -> Any:
        if subject.enrolled_at is None:
            return None
        return study_day(subject.at, subject.enrolled_at, subject.zone)
