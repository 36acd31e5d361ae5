"""The participant attribute schema: what onboarding records about each participant."""

import math
from typing import Annotated, Any, Literal

from pydantic import Field

from app.protocols.primitives import Identifier, Number, ProtocolModel


class AttributeBase(ProtocolModel):
    description: str = ""
    """What the attribute means and how onboarding collects it."""
    required: bool = False
    """If true, enrollment needs a value. Optional attributes may be absent, so CEL
    expressions must guard them with has(attributes.<name>)."""

    def validate_value(self, value: Any) -> str | None:
        """Why `value` is not acceptable for this attribute, or None if it is."""
        if value is None:
            return "a value is required" if self.required else None
        return self._check_value(value)

    def _check_value(self, value: Any) -> str | None:
        raise NotImplementedError


class BooleanAttribute(AttributeBase):
    """A yes/no fact, e.g. a contraindication flag such as trauma history."""

    type: Literal["boolean"]

    def _check_value(self, value: Any) -> str | None:
        return None if isinstance(value, bool) else "expected true or false"


class NumberAttribute(AttributeBase):
    """A number, optionally bounded, e.g. age or a baseline questionnaire score."""

    type: Literal["number"]
    min: Number | None = None
    """Lowest value allowed (no bound when omitted)."""
    max: Number | None = None
    """Highest value allowed (no bound when omitted)."""

    def _check_value(self, value: Any) -> str | None:
        if not isinstance(value, int | float) or isinstance(value, bool):
            return "expected a number"
        if not math.isfinite(value):
            return "expected a finite number"
        if self.min is not None and value < self.min:
            return f"{value} is below the minimum {self.min}"
        if self.max is not None and value > self.max:
            return f"{value} is above the maximum {self.max}"
        return None


class ChoiceAttribute(AttributeBase):
    """One value from a fixed list, e.g. pain phenotype."""

    type: Literal["choice"]
    choices: tuple[Identifier, ...]
    """The allowed values (at least one, unique)."""

    def _check_value(self, value: Any) -> str | None:
        if not isinstance(value, str) or value not in self.choices:
            return f"expected one of {list(self.choices)}"
        return None


class MultiChoiceAttribute(AttributeBase):
    """Any number of values from a fixed list, e.g. preferred intervention categories."""

    type: Literal["multi_choice"]
    choices: tuple[Identifier, ...]
    """The allowed values (at least one, unique)."""

    def _check_value(self, value: Any) -> str | None:
        if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
            return f"expected a list of values from {list(self.choices)}"
        unknown = [v for v in value if v not in self.choices]
        if unknown:
            return f"unknown values {unknown}; expected values from {list(self.choices)}"
        return None


class TextAttribute(AttributeBase):
    """Free text, e.g. a clinician's note. CEL sees it as a string."""

    type: Literal["text"]
    max_length: Annotated[int, Field(ge=1, le=10_000)] = 200
    """Maximum number of characters."""

    def _check_value(self, value: Any) -> str | None:
        if not isinstance(value, str):
            return "expected text"
        if len(value) > self.max_length:
            return f"text is longer than {self.max_length} characters"
        return None


AttributeSpec = Annotated[
    BooleanAttribute | NumberAttribute | ChoiceAttribute | MultiChoiceAttribute | TextAttribute,
    Field(discriminator="type"),
]
