"""Treatment fatigue: a sustained or gradual decline against the participant's own start.

The detector is pure: it reads one count per study day (24 h periods from enrollment, as
the weekly trends use) of each watched rate — EMA prompts answered / offered, intervention
prompts opened / delivered — and compares a rolling rate with the participant's rate over
the first ``baseline_days``. An episode opens when the rolling rate has been below
``flag_below`` times the baseline on ``flag_after_days`` consecutive days, and clears only when it
has been back at or above the higher ``clear_above`` times the baseline on ``clear_after_days``
consecutive days (hysteresis), or when the care team ends it (``end_fatigue_episode``: an
acknowledgement with ``end_response``, or a review). After the care team has ended one, a
new episode needs windows that lie wholly after the end: fresh evidence, not the decline
they have already answered.

An open episode is the unresolved ``fatigue`` care flag. While it is open the
participant's ``burden_factor`` holds the protocol's ``prompt_budget_factor`` (the engine
and the scheduler read it there); the flags evaluation writes it, in its transaction.
"""

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.audit.service import Actor, record
from app.core.batches import chunks
from app.core.clock import Clock
from app.core.ids import new_id
from app.monitoring.models import CareFlag, FlagKind, FlagResolution
from app.monitoring.trends import intervention_rows, prompt_rows
from app.notifications.models import NotificationKind, NotificationStatus
from app.notifications.outbox import NotificationValues
from app.participants.models import Participant
from app.protocols.document import Protocol
from app.protocols.monitoring import Fatigue, ReEngagementMessage
from app.protocols.primitives import minute_of_day
from app.studies.models import Study

DAY = timedelta(days=1)
# A re-engagement message is worth showing for two days.
RE_ENGAGEMENT_VALIDITY = timedelta(days=2)

# (denominator, numerator) of a rate on one study day: (offered, answered), (sent, opened).
Counts = tuple[int, int]


@dataclass(frozen=True)
class Assessment:
    """What the detector finds on the last complete study day."""

    day: int
    # Whether the last flag_after_days days were all declined (an episode should open).
    declined: bool
    # Whether the last clear_after_days days after the episode opened were all recovered.
    recovered: bool
    baseline: Mapping[str, float]
    rolling: Mapping[str, float | None]

    def detail(self, rule: Fatigue) -> dict[str, Any]:
        return {
            "day": self.day,
            "rates": {
                m: {
                    "baseline": round(b, 4),
                    "rolling": _rounded(self.rolling.get(m)),
                    "flag_below_rate": round(b * rule.threshold, 4),
                    "clear_above_rate": round(b * rule.clear_above, 4),
                }
                for m, b in self.baseline.items()
            },
            "baseline_days": rule.baseline_days,
            "window_days": rule.window_days,
            "flag_below": rule.threshold,
            "flag_after_days": rule.flag_after_days,
            "clear_above": rule.clear_above,
            "clear_after_days": rule.clear_after_days,
        }


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def _rate(days: Sequence[Counts], min_prompts: int) -> float | None:
    total = sum(d for d, _ in days)
    return sum(n for _, n in days) / total if total >= min_prompts else None


def baseline_rate(series: Sequence[Counts], rule: Fatigue) -> float | None:
    """The rate over the first baseline_days (None: too few prompts, or not yet over)."""
    if len(series) < rule.baseline_days:
        return None
    return _rate(series[: rule.baseline_days], rule.min_prompts)


def rolling_rate(series: Sequence[Counts], day: int, rule: Fatigue) -> float | None:
    """The rate over the window_days ending with ``day`` (None: too few prompts)."""
    if day < rule.window_days - 1 or day >= len(series):
        return None
    return _rate(series[day - rule.window_days + 1 : day + 1], rule.min_prompts)


def assess(
    rule: Fatigue,
    series: Mapping[str, Sequence[Counts]],
    *,
    opened_day: int | None = None,
    from_day: int = 0,
) -> Assessment | None:
    """The state of each watched rate on the last complete day of ``series`` (every list
    holds one entry per complete study day, day 0 first). ``opened_day``: the day an open
    episode was opened (recovery counts only later days); ``from_day``: windows must start
    on or after it (the day after the care team last ended an episode). None before the
    baseline is over or without a baseline to compare with."""
    last = max((len(s) for s in series.values()), default=0) - 1
    baseline: dict[str, float] = {}
    for measure in rule.measures:
        rate = baseline_rate(series.get(measure, ()), rule)
        if rate is not None and rate > 0:
            baseline[measure] = rate
    if not baseline or last < rule.baseline_days:
        return None
    first_judged = max(rule.baseline_days, from_day + rule.window_days - 1)

    def rolling(day: int) -> dict[str, float | None]:
        return {m: rolling_rate(series[m], day, rule) for m in baseline}

    def declined(day: int) -> bool:
        rates = rolling(day)
        return day >= first_judged and any(
            r is not None and r < rule.threshold * baseline[m] for m, r in rates.items()
        )

    def recovered(day: int) -> bool:
        rates = {m: r for m, r in rolling(day).items() if r is not None}
        return (
            opened_day is not None
            and day > opened_day
            and bool(rates)
            and all(r >= rule.clear_above * baseline[m] for m, r in rates.items())
        )

    days_back = range(last - rule.flag_after_days + 1, last + 1)
    clear_back = range(last - rule.clear_after_days + 1, last + 1)
    return Assessment(
        day=last,
        declined=all(declined(d) for d in days_back),
        recovered=all(recovered(d) for d in clear_back),
        baseline=baseline,
        rolling=rolling(last),
    )


def study_day_index(enrolled_at: datetime, when: datetime) -> int:
    """The 24 h period since enrollment that ``when`` falls in (0 first)."""
    return int((when - enrolled_at) / DAY)


def daily_series(
    session: Session, participants: Sequence[Participant], now: datetime
) -> dict[uuid.UUID, dict[str, list[Counts]]]:
    """Per participant, each watched rate's counts on every complete study day."""
    starts = {
        p.id: p.enrolled_at
        for p in participants
        if p.enrolled_at is not None and now >= p.enrolled_at + DAY
    }
    found: dict[uuid.UUID, dict[str, list[list[int]]]] = {
        pid: {
            m: [[0, 0] for _ in range(study_day_index(start, now))]
            for m in ("ema_completion", "engagement")
        }
        for pid, start in starts.items()
    }
    for ids in chunks(list(starts)):
        some = {pid: starts[pid] for pid in ids}
        for measure, rows in (
            ("ema_completion", prompt_rows(session, some, now)),
            ("engagement", intervention_rows(session, some, now)),
        ):
            for pid, when, done in rows:
                days = found[pid][measure]
                day = study_day_index(some[pid], when)
                if day < len(days):  # today is not complete
                    days[day][0] += 1
                    days[day][1] += done
    return {
        pid: {m: [(d, n) for d, n in days] for m, days in measures.items()}
        for pid, measures in found.items()
    }


def re_engagement_notification(
    participant: Participant, protocol: Protocol, message: ReEngagementMessage, now: datetime
) -> NotificationValues:
    """The episode's re-engagement push, due now or when the quiet hours end."""
    send_at = _after_quiet_hours(protocol, ZoneInfo(participant.timezone), now)
    return {
        "id": new_id(),
        "participant_id": participant.id,
        "study_id": participant.study_id,
        "scheduled_item_id": None,
        "decision_id": None,
        "option_id": None,
        "status": NotificationStatus.pending,
        "attempts": 0,
        "kind": NotificationKind.re_engagement,
        "title": message.title,
        "body": message.body,
        "deep_link": message.deep_link,
        "data": {"reason": "fatigue"},
        "created_at": now,
        "send_at": send_at,
        "expires_at": send_at + RE_ENGAGEMENT_VALIDITY,
    }


def _after_quiet_hours(protocol: Protocol, zone: ZoneInfo, now: datetime) -> datetime:
    quiet = protocol.policy.availability.quiet_hours
    local = now.astimezone(zone)
    if quiet is None or not quiet.contains(minute_of_day(local.time())):
        return now
    end = quiet.end
    day = local.date() if local.time() < end else local.date() + DAY
    return datetime.combine(day, end, zone)


def end_fatigue_episode(
    session: Session,
    clock: Clock,
    actor: Actor,
    participant_id: uuid.UUID,
    *,
    reason: str,
) -> CareFlag | None:
    """The care team ends the participant's open fatigue episode (an acknowledgement with
    ``end_response``, or a care-team review): the flag is resolved as
    ``ended_by_care_team``, the burden factor goes back to 1 and the decision is audited.
    Returns the flag, or None when no episode was open. Writes in the caller's
    transaction; the reviews module calls this when a review ends the response.

    The study's row is locked first, as the flags evaluation locks it, so that the two
    take turns (and always lock in the same order)."""
    study_id = session.scalar(
        sa.select(Participant.study_id).where(Participant.id == participant_id)
    )
    session.execute(sa.select(Study.id).where(Study.id == study_id).with_for_update())
    flag = session.scalar(
        sa.select(CareFlag)
        .where(
            CareFlag.participant_id == participant_id,
            CareFlag.kind == FlagKind.fatigue,
            CareFlag.resolved_at.is_(None),
        )
        .with_for_update()
    )
    if flag is None:
        return None
    flag.resolved_at, flag.resolution = clock.now(), FlagResolution.ended_by_care_team
    participant = session.get_one(Participant, participant_id)
    participant.burden_factor = 1.0
    record(
        session,
        clock,
        actor,
        "fatigue.end",
        resource_type="care_flag",
        resource_id=flag.id,
        study_id=flag.study_id,
        detail={"participant_id": str(participant_id), "reason": reason},
    )
    return flag
