"""Intervention options: what a decision can deliver."""

import string
from collections.abc import Mapping
from enum import StrEnum
from typing import Any

from pydantic import Field

from app.protocols.primitives import CelExpression, Identifier, PositiveInt, ProtocolModel


class Category(StrEnum):
    pain_acceptance = "pain_acceptance"
    cbt_skill = "cbt_skill"
    mindfulness = "mindfulness"
    activity_pacing = "activity_pacing"
    movement = "movement"
    sleep = "sleep"
    feedback = "feedback"
    none = "none"
    """Deliver nothing (the control arm of a micro-randomization)."""


def placeholders(template: str) -> list[str]:
    """The `{name}` placeholders of a message template; ValueError if braces are unbalanced.

    Doubled braces (`{{`, `}}`) are literal braces, as in Python format strings.
    """
    return [field for _, field, _, _ in string.Formatter().parse(template) if field is not None]


class InterventionOption(ProtocolModel):
    """Something a decision can deliver: a push prompt, usually linking to an exercise."""

    id: Identifier
    """Unique among options; rules, tracks and the decision log refer to it."""
    category: Category
    """pain_acceptance, cbt_skill, mindfulness, activity_pacing, movement, sleep, feedback or
    none. Options of category none deliver nothing and have no message."""
    title: str | None = Field(default=None, min_length=1, max_length=100)
    """Push title. Required unless the category is none. May use {variable} placeholders."""
    body: str | None = Field(default=None, min_length=1, max_length=500)
    """Push body. Required unless the category is none. May use {variable} placeholders."""
    deep_link: str | None = Field(default=None, min_length=1)
    """Where tapping the push leads in the app, e.g. "kairos://exercise/acceptance-1"."""
    exercise_id: Identifier | None = None
    """The exercise the prompt offers, for completion reports."""
    expected_duration_minutes: PositiveInt | None = None
    """How long the exercise takes, shown to the participant."""
    contraindicated_when: CelExpression | None = None
    """CEL over `attributes`: when true, the option is never delivered to that participant."""

    @property
    def delivers_nothing(self) -> bool:
        return self.category is Category.none

    def render(self, values: Mapping[str, Any]) -> tuple[str, str]:
        """Title and body with placeholders filled from tailoring variable values."""
        return (self.title or "").format_map(values), (self.body or "").format_map(values)
