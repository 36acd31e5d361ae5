"""A participant attribute recorded at onboarding, from the participant's record."""

from collections.abc import Sequence
from typing import Any, ClassVar

from sqlalchemy.orm import Session

from app.decision_rules.bounds import Bound
from app.decision_rules.sources.base import Row, Subject
from app.protocols.document import AttributeVariable, TailoringVariable


class AttributeReader:
    source: ClassVar[str] = "attribute"

    def shape(self, variable: TailoringVariable) -> None:
        return None

    def query(
        self, session: Session, shape: tuple[str, ...], bounds: Sequence[Bound]
    ) -> dict[int, Row]:
        raise TypeError("attributes need no query")

    def pick(self, variable: TailoringVariable, row: Row | None) -> Any:
        raise TypeError("attributes need no query")

    def value(self, subject: Subject, variable: TailoringVariable) -> Any:
        assert isinstance(variable, AttributeVariable)  # noqa: S101 - the registry's key
        return subject.attributes.get(variable.attribute)
