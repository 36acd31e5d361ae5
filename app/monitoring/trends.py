"""Weekly figures per participant: outcome means against baseline, completion, engagement.

Study weeks count from enrollment (week 0 is the first 7 days, the baseline week), so
every participant's trend lines up with their own start.
"""

import uuid
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.core.batches import chunks
from app.ema.models import EmaAnswer
from app.engagement.models import EngagementEvent, EngagementKind
from app.notifications.models import Notification, NotificationKind, NotificationStatus
from app.participants.models import Participant
from app.protocols.document import Protocol
from app.protocols.questionnaires import NumericRatingItem
from app.protocols.tailoring import WearableMetric
from app.scheduling.models import ItemKind, ItemStatus, ScheduledItem
from app.sensing.models import WearableSummary

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
    # Wearable summaries: the mean per day of the day's total (steps, active and sleep
    # minutes), or of the values (resting heart rate, sleep efficiency); None without data.
    wearables: dict[str, float | None] = field(default_factory=dict)

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


def matches(reference: str, questionnaire_id: str, item_id: str) -> bool:
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
    return weekly_figures_of(session, [participant], references, now)[participant.id]


def weekly_figures_of(
    session: Session, participants: Sequence[Participant], references: Sequence[str], now: datetime
) -> dict[uuid.UUID, list[WeekFigures]]:
    """``weekly_figures`` of each participant, with four queries for all of them."""
    starts = {
        p.id: p.enrolled_at
        for p in participants
        if p.enrolled_at is not None and now >= p.enrolled_at
    }
    weeks = {
        pid: [
            WeekFigures(week=w, start=start + w * WEEK, end=start + (w + 1) * WEEK)
            for w in range(_week_of(start, now) + 1)
        ]
        for pid, start in starts.items()
    }
    for ids in chunks(list(starts)):
        some = {pid: starts[pid] for pid in ids}
        _add_means(session, some, now, references, weeks)
        _add_prompts(session, some, now, weeks)
        _add_engagement(session, some, now, weeks)
        _add_wearables(session, some, now, weeks)
    return {p.id: weeks.get(p.id, []) for p in participants}


def answer_rows(
    session: Session, starts: dict[uuid.UUID, datetime], item_ids: set[str], now: datetime
) -> Iterator[tuple[uuid.UUID, str, str, datetime, float]]:
    """(participant, questionnaire, item, answered at, value) of every numeric answer to
    one of ``item_ids`` since the participant's start, up to ``now``."""
    rows = session.execute(
        sa.select(
            EmaAnswer.participant_id,
            EmaAnswer.questionnaire_id,
            EmaAnswer.item_id,
            EmaAnswer.answered_at,
            EmaAnswer.numeric_value,
        )
        .where(
            EmaAnswer.participant_id.in_(list(starts)),
            EmaAnswer.item_id.in_(item_ids),
            EmaAnswer.answered_at >= min(starts.values()),
            EmaAnswer.answered_at <= now,
            EmaAnswer.numeric_value.is_not(None),
        )
        # The order of the index, in which one participant's answers were always read: the
        # means are sums of floats, so the order is part of the result.
        .order_by(EmaAnswer.participant_id, EmaAnswer.item_id, EmaAnswer.answered_at)
    )
    for participant_id, questionnaire_id, item_id, answered_at, numeric in rows:
        if numeric is not None and answered_at >= starts[participant_id]:
            yield participant_id, questionnaire_id, item_id, answered_at, numeric


def _add_means(
    session: Session,
    starts: dict[uuid.UUID, datetime],
    now: datetime,
    references: Sequence[str],
    weeks: dict[uuid.UUID, list[WeekFigures]],
) -> None:
    rows = answer_rows(session, starts, {r.partition(".")[2] for r in references}, now)
    values: dict[tuple[uuid.UUID, int, str], list[float]] = defaultdict(list)
    for participant_id, questionnaire_id, item_id, answered_at, numeric in rows:
        start = starts[participant_id]
        for reference in references:
            if matches(reference, questionnaire_id, item_id):
                values[(participant_id, _week_of(start, answered_at), reference)].append(numeric)
    for participant_id in starts:
        for figures in weeks[participant_id]:
            for reference in references:
                found = values.get((participant_id, figures.week, reference))
                figures.means[reference] = sum(found) / len(found) if found else None


def _add_prompts(
    session: Session,
    starts: dict[uuid.UUID, datetime],
    now: datetime,
    weeks: dict[uuid.UUID, list[WeekFigures]],
) -> None:
    for participant_id, due_at, answered in prompt_rows(session, starts, now):
        figures = weeks[participant_id][_week_of(starts[participant_id], due_at)]
        figures.prompts_offered += 1
        figures.prompts_answered += answered


def prompt_rows(
    session: Session, starts: dict[uuid.UUID, datetime], now: datetime
) -> Iterator[tuple[uuid.UUID, datetime, bool]]:
    """(participant, due time, answered) of each EMA prompt offered since the
    participant's start, up to ``now``."""
    # An offered prompt is one that was sent or that expired unsent; cancelled ones never
    # reached the participant.
    rows = session.execute(
        sa.select(
            ScheduledItem.participant_id, ScheduledItem.due_at, ScheduledItem.answered_at
        ).where(
            ScheduledItem.participant_id.in_(list(starts)),
            ScheduledItem.kind == ItemKind.ema_prompt,
            ScheduledItem.status.in_([ItemStatus.done, ItemStatus.missed]),
            ScheduledItem.due_at >= min(starts.values()),
            ScheduledItem.due_at <= now,
        )
    )
    for participant_id, due_at, answered_at in rows:
        if due_at >= starts[participant_id]:
            yield participant_id, due_at, answered_at is not None


def _add_engagement(
    session: Session,
    starts: dict[uuid.UUID, datetime],
    now: datetime,
    weeks: dict[uuid.UUID, list[WeekFigures]],
) -> None:
    for participant_id, sent_at, opened in intervention_rows(session, starts, now):
        figures = weeks[participant_id][_week_of(starts[participant_id], sent_at)]
        figures.interventions_sent += 1
        figures.interventions_opened += opened


def intervention_rows(
    session: Session, starts: dict[uuid.UUID, datetime], now: datetime
) -> Iterator[tuple[uuid.UUID, datetime, bool]]:
    """(participant, sent time, opened) of each intervention prompt delivered since the
    participant's start, up to ``now`` (opened: the prompt opened, or its exercise started
    or completed)."""
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
        sa.select(Notification.participant_id, Notification.sent_at, opened).where(
            Notification.participant_id.in_(list(starts)),
            Notification.kind == NotificationKind.intervention,
            Notification.status == NotificationStatus.sent,
            Notification.sent_at >= min(starts.values()),
            Notification.sent_at <= now,
        )
    )
    for participant_id, sent_at, was_opened in rows:
        # None is excluded by the query
        if sent_at is not None and sent_at >= starts[participant_id]:
            yield participant_id, sent_at, bool(was_opened)


# Totals per day (a day's steps, its minutes); the others are measured values.
_ADDITIVE = (WearableMetric.steps, WearableMetric.active_minutes, WearableMetric.sleep_minutes)


def _add_wearables(
    session: Session,
    starts: dict[uuid.UUID, datetime],
    now: datetime,
    weeks: dict[uuid.UUID, list[WeekFigures]],
) -> None:
    """Each week's wearable means. A summary counts on the study day it ends (a night's
    sleep belongs to the morning, as in the participant's own summary)."""
    rows = session.execute(
        sa.select(
            WearableSummary.participant_id,
            WearableSummary.metric,
            WearableSummary.end_at,
            WearableSummary.value,
        )
        .where(
            WearableSummary.participant_id.in_(list(starts)),
            WearableSummary.end_at > min(starts.values()),
            WearableSummary.end_at <= now,
        )
        .order_by(WearableSummary.participant_id, WearableSummary.metric, WearableSummary.end_at)
    )
    totals: dict[tuple[uuid.UUID, str, int], float] = defaultdict(float)
    values: dict[tuple[uuid.UUID, str, int], list[float]] = defaultdict(list)
    for participant_id, metric, end_at, value in rows:
        start = starts[participant_id]
        if end_at <= start or metric not in set(WearableMetric):
            continue
        day = int((end_at - start) / timedelta(days=1))
        if metric in _ADDITIVE:
            totals[(participant_id, metric, day)] += value
        else:
            values[(participant_id, metric, day)].append(value)
    per_week: dict[tuple[uuid.UUID, str, int], list[float]] = defaultdict(list)
    for (participant_id, metric, day), total in totals.items():
        per_week[(participant_id, metric, day // 7)].append(total)
    for (participant_id, metric, day), found in values.items():
        per_week[(participant_id, metric, day // 7)] += found
    for participant_id in starts:
        for figures in weeks[participant_id]:
            for metric in WearableMetric:
                got = per_week.get((participant_id, metric, figures.week))
                figures.wearables[metric.value] = sum(got) / len(got) if got else None
