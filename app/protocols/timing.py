"""When things happen: EMA schedules, decision points and the local-time windows they use.

All times are wall-clock times in the participant's time zone. Windows never cross
midnight (a window from 22:00 to 02:00 is two windows); quiet hours may.
"""

from typing import Annotated

from pydantic import Field

# Event is defined in core (the event bus needs it) and re-exported for the event triggers.
from app.core.event_kinds import Event as Event
from app.protocols.primitives import (
    ALL_WEEKDAYS,
    Identifier,
    LocalTime,
    NonNegativeInt,
    PositiveInt,
    ProtocolModel,
    Weekday,
    minute_of_day,
)

# Reminders beyond a handful are nagging, which drives treatment fatigue.
MAX_REMINDERS = 5


class TimeWindow(ProtocolModel):
    """A local-time window within one day in which `count` moments are drawn at random."""

    start: LocalTime
    """Start of the window (HH:MM)."""
    end: LocalTime
    """End of the window (HH:MM), later than start on the same day."""
    count: PositiveInt = 1
    """How many random moments to draw in the window each day."""

    @property
    def start_minute(self) -> int:
        return minute_of_day(self.start)

    @property
    def end_minute(self) -> int:
        return minute_of_day(self.end)

    def contains(self, minute: int) -> bool:
        """Whether a minute of the day lies in the window (start inclusive, end exclusive)."""
        return self.start_minute <= minute < self.end_minute


class EventTrigger(ProtocolModel):
    """Something the participant or their phone does that starts a prompt or decision."""

    event: Event
    """ema_submitted, wearable_received, exercise_completed or prompt_opened."""
    questionnaire: Identifier | None = None
    """For ema_submitted only: react only to this questionnaire (default: any)."""
    delay_minutes: NonNegativeInt = 0
    """Wait this long after the event."""


class Timing(ProtocolModel):
    """Fields shared by EMA schedules and decision points."""

    id: Identifier
    """Unique among the EMA schedules (or among the decision points)."""
    days_of_week: tuple[Weekday, ...] = ALL_WEEKDAYS
    """Days on which fixed and random times apply (mon..sun; default every day)."""
    start_day: NonNegativeInt = 0
    """First study day (0 is the enrollment day)."""
    end_day: NonNegativeInt | None = None
    """Last study day, inclusive (default: the last day of the study)."""
    times: tuple[LocalTime, ...] = ()
    """Fixed local times (HH:MM)."""
    random_windows: tuple[TimeWindow, ...] = ()
    """Windows in which moments are drawn at random each day."""
    min_spacing_minutes: NonNegativeInt = 0
    """Random moments keep at least this far from each other and from the fixed times."""
    triggers: tuple[EventTrigger, ...] = ()
    """Events that start one as well, at any time of day on active days."""

    @property
    def moments_per_day(self) -> int:
        """Fixed times and random moments on an active day (triggered ones not counted)."""
        return len(self.times) + sum(window.count for window in self.random_windows)

    def is_active_on(self, study_day: int, weekday: Weekday, last_study_day: int) -> bool:
        """Whether fixed and random times apply on this study day (0 = enrollment day)."""
        end = self.end_day if self.end_day is not None else last_study_day
        return self.start_day <= study_day <= end and weekday in self.days_of_week


class ReminderPolicy(ProtocolModel):
    """Reminder pushes for an unanswered EMA prompt."""

    count: Annotated[int, Field(ge=0, le=MAX_REMINDERS)] = 0
    """How many reminders to send at most (0 to 5)."""
    every_minutes: PositiveInt = 15
    """Minutes between the prompt and the first reminder, and between reminders."""


class EmaSchedule(Timing):
    """When a questionnaire is prompted."""

    questionnaire: Identifier
    """Id of the questionnaire to prompt."""
    expires_after_minutes: PositiveInt = 60
    """An unanswered prompt expires (is recorded as missed) after this many minutes."""
    reminders: ReminderPolicy = ReminderPolicy()
    """Reminder pushes while the prompt is unanswered (default: none)."""
    droppable: bool = False
    """An optional schedule: while a fatigue episode is open its prompts are thinned by the
    fatigue response's prompt_budget_factor (monitoring.fatigue.response)."""


class DecisionPoint(Timing):
    """A moment at which the policy decides whether and what to deliver."""

    grace_minutes: NonNegativeInt = 10
    """A decision point that cannot run within this many minutes of its time is recorded
    as missed instead of running late."""


class QuietHours(ProtocolModel):
    """Local hours in which nothing is pushed. May cross midnight (22:00 to 07:30)."""

    start: LocalTime
    """When quiet hours begin (HH:MM)."""
    end: LocalTime
    """When quiet hours end (HH:MM); earlier than start means they end the next morning."""

    def contains(self, minute: int) -> bool:
        """Whether a minute of the day is quiet (start inclusive, end exclusive)."""
        start, end = minute_of_day(self.start), minute_of_day(self.end)
        if start <= end:
            return start <= minute < end
        return minute >= start or minute < end
