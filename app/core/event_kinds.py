"""The kinds of participant event: what a protocol's event triggers name and ingestion publishes.

It lives in ``core`` (standard library only) so that the event bus (``core.events``) and the
protocol language (``protocols.timing``, which re-exports it) share one type without
``core`` importing a domain package.
"""

from enum import StrEnum


class Event(StrEnum):
    ema_submitted = "ema_submitted"
    """The participant submitted an EMA questionnaire."""
    wearable_received = "wearable_received"
    """A new wearable summary arrived."""
    exercise_completed = "exercise_completed"
    """The participant reported an exercise as done."""
    prompt_opened = "prompt_opened"
    """The participant opened an intervention prompt."""
