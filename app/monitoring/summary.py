"""The participant's own feedback: weekly pain, activity, sleep and exercises side by side.

Showing people their own data (steps against pain) counters the fear that movement
worsens pain; the app draws it from this.
"""

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.ema.models import EmaAnswer
from app.engagement.models import EngagementEvent, EngagementKind
from app.participants.models import Participant
from app.sensing.models import WearableSummary

DAYS = 28


@dataclass(frozen=True)
class DaySummary:
    date: date
    pain_mean: float | None
    steps: float | None
    sleep_minutes: float | None
    exercises_completed: int


def daily_summary(
    session: Session, participant: Participant, pain_item: str, now: datetime
) -> list[DaySummary]:
    """The last 28 local days, oldest first (today included, so far)."""
    zone = ZoneInfo(participant.timezone)
    today = now.astimezone(zone).date()
    first = today - timedelta(days=DAYS - 1)
    since = datetime.combine(first, datetime.min.time(), zone)
    pid = participant.id

    def local_day(when: datetime) -> date:
        return when.astimezone(zone).date()

    pain: dict[date, list[float]] = defaultdict(list)
    for answered_at, value in session.execute(
        sa.select(EmaAnswer.answered_at, EmaAnswer.numeric_value).where(
            EmaAnswer.participant_id == pid,
            EmaAnswer.item_id == pain_item,
            EmaAnswer.answered_at >= since,
            EmaAnswer.answered_at <= now,
            EmaAnswer.numeric_value.is_not(None),
        )
    ):
        if value is not None:
            pain[local_day(answered_at)].append(value)
    totals: dict[tuple[str, date], float] = defaultdict(float)
    for metric, end_at, value in session.execute(
        sa.select(WearableSummary.metric, WearableSummary.end_at, WearableSummary.value).where(
            WearableSummary.participant_id == pid,
            WearableSummary.metric.in_(["steps", "sleep_minutes"]),
            WearableSummary.end_at > since,
            WearableSummary.start_at <= now,
        )
    ):
        # A summary counts on the local day it ends (a night's sleep belongs to the morning).
        totals[(metric, local_day(end_at))] += value
    exercises: dict[date, int] = defaultdict(int)
    for (occurred_at,) in session.execute(
        sa.select(EngagementEvent.occurred_at).where(
            EngagementEvent.participant_id == pid,
            EngagementEvent.kind == EngagementKind.exercise_completed,
            EngagementEvent.occurred_at >= since,
            EngagementEvent.occurred_at <= now,
        )
    ):
        exercises[local_day(occurred_at)] += 1
    days = [first + timedelta(days=n) for n in range(DAYS)]
    return [
        DaySummary(
            date=day,
            pain_mean=sum(pain[day]) / len(pain[day]) if pain.get(day) else None,
            steps=totals.get(("steps", day)),
            sleep_minutes=totals.get(("sleep_minutes", day)),
            exercises_completed=exercises.get(day, 0),
        )
        for day in days
    ]
