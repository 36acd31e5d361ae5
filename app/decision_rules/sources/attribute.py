"""A participant attribute recorded at onboarding, from the participant's record."""

from typing import Any, ClassVar

from app.decision_rules.sources.base import Subject, Unqueried
from app.protocols.document import AttributeVariable, TailoringVariable


class AttributeReader(Unqueried):
    source: ClassVar[str] = "attribute"

    def value(self, subject: Subject, variable: TailoringVariable) -> Any:
        assert isinstance(variable, AttributeVariable)  # noqa: S101 - the registry's key
        return subject.attributes.get(variable.attribute)
