"""Weekly figures per participant: outcome means against baseline, completion, engagement.

Study weeks count from enrollment (week 0 is the first 7 days, the baseline week), so
every participant's trend lines up with their own start.
"""

import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.ema.models import EmaAnswer
from app.engagement.models import EngagementEvent, EngagementKind
from app.notifications.models import Notification, NotificationKind, NotificationStatus
from app.participants.models import Participant
from app.protocols.document import Protocol
from app.protocols.questionnaires import NumericRatingItem
from app.scheduling.models import ItemKind, ItemStatus, ScheduledItem

WEEK = timedelta(days=7)


@dataclass
class WeekFigures:
    week: int
    start: datetime
    end: datetime
    # Mean of each trend item's answers in the week (None without answers).
    means: dict[str, float | None] = field(default_factory=dict)
    prompts_offered: int = 0
    prompts_answered: int = 0
    interventions_sent: int = 0
    interventions_opened: int = 0

    @property
    def ema_completion(self) -> float | None:
        return self.prompts_answered / self.prompts_offered if self.prompts_offered else None

    @property
    def engagement(self) -> float | None:
        sent = self.interventions_sent
        return self.interventions_opened / sent if sent else None


def trend_items(protocol: Protocol) -> list[str]:
    if protocol.monitoring.trend_items:
        return list(protocol.monitoring.trend_items)
    return [
        f"{q.id}.{item.id}"
        for q in protocol.questionnaires
        for item in q.items
        if isinstance(item, NumericRatingItem)
    ]


def _week_of(enrolled_at: datetime, when: datetime) -> int:
    return int((when - enrolled_at) / WEEK)


def _matches(reference: str, questionnaire_id: str, item_id: str) -> bool:
    wanted_q, _, wanted_item = reference.partition(".")
    return wanted_item == item_id and wanted_q in ("*", questionnaire_id)


def weekly_figures(
    session: Session,
    participant: Participant,
    protocol: Protocol,
    references: Sequence[str],
    now: datetime,
) -> list[WeekFigures]:
    """Every completed or current study week up to ``now``, oldest first."""
    if participant.enrolled_at is None or now < participant.enrolled_at:
        return []
    start = participant.enrolled_at
    weeks = [
        WeekFigures(week=w, start=start + w * WEEK, end=start + (w + 1) * WEEK)
        for w in range(_week_of(start, now) + 1)
    ]
    _add_means(session, participant.id, start, now, references, weeks)
    _add_prompts(session, participant.id, start, now, weeks)
    _add_engagement(session, participant.id, start, now, weeks)
    return weeks


def _add_means(
    session: Session,
    participant_id: uuid.UUID,
    start: datetime,
    now: datetime,
    references: Sequence[str],
    weeks: list[WeekFigures],
) -> None:
    item_ids = {r.partition(".")[2] for r in references}
    rows = session.execute(
        sa.select(
            EmaAnswer.questionnaire_id,
            EmaAnswer.item_id,
            EmaAnswer.answered_at,
            EmaAnswer.numeric_value,
        ).where(
            EmaAnswer.participant_id == participant_id,
            EmaAnswer.item_id.in_(item_ids),
            EmaAnswer.answered_at >= start,
            EmaAnswer.answered_at <= now,
            EmaAnswer.numeric_value.is_not(None),
        )
    )
    values: dict[tuple[int, str], list[float]] = defaultdict(list)
    for questionnaire_id, item_id, answered_at, numeric in rows:
        for reference in references:
            if numeric is not None and _matches(reference, questionnaire_id, item_id):
                values[(_week_of(start, answered_at), reference)].append(numeric)
    for figures in weeks:
        for reference in references:
            found = values.get((figures.week, reference))
            figures.means[reference] = sum(found) / len(found) if found else None


def _add_prompts(
    session: Session,
    participant_id: uuid.UUID,
    start: datetime,
    now: datetime,
    weeks: list[WeekFigures],
) -> None:
    # An offered prompt is one that was sent or that expired unsent; cancelled ones never
    # reached the participant.
    rows = session.execute(
        sa.select(ScheduledItem.due_at, ScheduledItem.answered_at).where(
            ScheduledItem.participant_id == participant_id,
            ScheduledItem.kind == ItemKind.ema_prompt,
            ScheduledItem.status.in_([ItemStatus.done, ItemStatus.missed]),
            ScheduledItem.due_at >= start,
            ScheduledItem.due_at <= now,
        )
    )
    for due_at, answered_at in rows:
        figures = weeks[_week_of(start, due_at)]
        figures.prompts_offered += 1
        figures.prompts_answered += answered_at is not None


def _add_engagement(
    session: Session,
    participant_id: uuid.UUID,
    start: datetime,
    now: datetime,
    weeks: list[WeekFigures],
) -> None:
    opened = (
        sa.select(EngagementEvent.id)
        .where(
            EngagementEvent.notification_id == Notification.id,
            EngagementEvent.kind.in_(
                [
                    EngagementKind.prompt_opened,
                    EngagementKind.exercise_started,
                    EngagementKind.exercise_completed,
                ]
            ),
        )
        .exists()
    )
    rows = session.execute(
        sa.select(Notification.sent_at, opened).where(
            Notification.participant_id == participant_id,
            Notification.kind == NotificationKind.intervention,
            Notification.status == NotificationStatus.sent,
            Notification.sent_at >= start,
            Notification.sent_at <= now,
        )
    )
    for sent_at, was_opened in rows:
        if sent_at is None:  # excluded by the query; narrows the type
            continue
        figures = weeks[_week_of(start, sent_at)]
        figures.interventions_sent += 1
        figures.interventions_opened += bool(was_opened)
