"""The daily push budget (``policy.availability.max_pushes_per_day``).

Every push a participant gets in their local day counts against it: EMA prompts, reminders
and interventions alike, because that is what the patient feels (a crisis answer's safety
response is the one exception: it is never counted, never held back). Once it is reached the
decision engine makes interventions unavailable (logged with the reason, so the MRT
analysis sees an unavailable decision point, never a randomized push that was dropped),
and the sender drops the pushes of reminders and of event-triggered prompts (the prompt
itself stays open in the app's pull list). Scheduled EMA prompts are the study's
measurements and are always sent, so the budget keeps room for those still to come that
day: a morning of reminders and interventions cannot push the evening prompt over it.
Protocol warnings say when the scheduled prompts alone exceed it.
"""

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.decision_rules.bounds import Bound, among, bounds_table, count_per_bound
from app.decision_rules.calendar import next_midnight, start_of_local_day
from app.decision_rules.evaluation import budget_reason
from app.notifications.models import Notification, NotificationKind, NotificationStatus
from app.notifications.sender import Outgoing
from app.participants.models import Participant
from app.protocols.store import protocols_of_versions
from app.scheduling.models import ItemKind, ItemStatus, ScheduledItem
from app.scheduling.planning import TRIGGER_MARK

# Pushes that have gone or are going out; cancelled, expired and failed ones never reached
# the phone.
_OUT = (NotificationStatus.pending, NotificationStatus.sending, NotificationStatus.sent)


def pushes_today(
    session: Session,
    zones: Mapping[uuid.UUID, ZoneInfo],
    now: datetime,
    *,
    sent_only: bool = False,
) -> dict[uuid.UUID, int]:
    """Per participant: pushes due from their local midnight up to ``now``, plus the
    scheduled EMA prompts still to come before the next midnight (two queries).
    ``sent_only`` leaves out pushes still in the outbox (the sender counts its own batch)."""
    if not zones:
        return {}
    keys = dict(enumerate(zones))
    b = bounds_table(
        session,
        [Bound(k, pid, start_of_local_day(now, zones[pid]), now) for k, pid in keys.items()],
    )
    n = Notification
    statuses = (NotificationStatus.sent,) if sent_only else _OUT
    so_far = count_per_bound(
        session,
        b,
        n,
        n.participant_id == b.c.pid,
        n.send_at >= b.c.s,
        n.send_at <= b.c.e,
        n.status.in_(statuses),
        # A crisis answer's safety response is not burden: it neither counts against the
        # budget nor is ever held back by it.
        n.kind != NotificationKind.safety_response,
    )
    later = bounds_table(
        session, [Bound(k, pid, now, next_midnight(now, zones[pid])) for k, pid in keys.items()]
    )
    s = ScheduledItem
    to_come = count_per_bound(
        session,
        later,
        s,
        s.participant_id == later.c.pid,
        s.due_at > later.c.s,
        s.due_at < later.c.e,
        s.kind == ItemKind.ema_prompt,
        s.status == ItemStatus.planned,
        s.slot_key.not_like(f"%{TRIGGER_MARK}%"),
    )
    counts = dict.fromkeys(zones, 0)
    for k, count in [*so_far, *to_come]:
        counts[keys[k]] += count
    return counts


def pushes_over_budget(
    session: Session, batch: Sequence[Outgoing], now: datetime
) -> dict[uuid.UUID, str]:
    """The pushes of a batch (in send order) that may be dropped and would go over their
    participant's budget, with the reason; the batch's other pushes count before them."""
    droppable = _droppable(session, batch)
    if not droppable:
        return {}
    budgets, zones = _budgets(session, {o.participant_id for o in batch if o.id in droppable})
    if not budgets:
        return {}
    counts = pushes_today(session, zones, now, sent_only=True)
    dropped: dict[uuid.UUID, str] = {}
    for outgoing in batch:
        pid = outgoing.participant_id
        if pid not in budgets:
            continue
        if outgoing.id in droppable:
            reason = budget_reason(counts[pid], budgets[pid])
            if reason is not None:
                dropped[outgoing.id] = reason
                continue
        counts[pid] += 1
    return dropped


def _droppable(session: Session, batch: Sequence[Outgoing]) -> set[uuid.UUID]:
    """Reminders, and prompts an event triggered (not the schedule's measurements)."""
    found = {o.id for o in batch if o.kind == NotificationKind.reminder}
    prompts = {
        o.scheduled_item_id: o.id
        for o in batch
        if o.kind == NotificationKind.ema_prompt and o.scheduled_item_id is not None
    }
    if prompts:
        triggered = session.scalars(
            sa.select(ScheduledItem.id).where(
                among(session, ScheduledItem.id, prompts),
                ScheduledItem.slot_key.like(f"%{TRIGGER_MARK}%"),
            )
        )
        found |= {prompts[item_id] for item_id in triggered}
    return found


def _budgets(
    session: Session, participants: set[uuid.UUID]
) -> tuple[dict[uuid.UUID, int], dict[uuid.UUID, ZoneInfo]]:
    """The push budget and time zone of those participants whose protocol has one."""
    people = session.execute(
        sa.select(
            Participant.id, Participant.study_id, Participant.protocol_version, Participant.timezone
        ).where(among(session, Participant.id, participants))
    ).all()
    protocols = protocols_of_versions(
        session, {(p.study_id, p.protocol_version) for p in people if p.protocol_version}
    )
    budgets: dict[uuid.UUID, int] = {}
    zones: dict[uuid.UUID, ZoneInfo] = {}
    for p in people:
        protocol = protocols.get((p.study_id, p.protocol_version or 0))
        budget = protocol.policy.availability.max_pushes_per_day if protocol else None
        if budget is not None:
            budgets[p.id] = budget
            zones[p.id] = ZoneInfo(p.timezone)
    return budgets, zones
