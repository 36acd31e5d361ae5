"""The outbox sender: claims due notifications with a lease, pushes them, records each attempt.

Three steps, so no database transaction stays open while the provider is called:

1. claim (short transaction): due `pending` rows, and `sending` rows whose lease expired
   (their sender died), become `sending` for this worker;
2. prepare (read only): who gets what, on which enabled devices; what is no longer wanted
   (expired, answered, participant paused) is settled without a push;
3. push through the provider, outside any transaction, then finish (one transaction): a
   guarded update re-takes the rows still leased to this worker, records every attempt and
   sets the outcome; dead tokens disable their device.

At least once: a sender that dies after the provider accepted a push but before step 3
commits leaves the row `sending`; when its lease expires another sender pushes it again.
The app de-duplicates by the notification id carried in the payload.
"""

import logging
import random
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import cast

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from app.core.bulk_inserts import insert_rows
from app.core.bulk_updates import update_by_id
from app.core.clock import Clock
from app.core.db import session_scope
from app.core.ids import new_id
from app.core.leases import LeasedTable, claim, retake
from app.core.retry import Backoff
from app.notifications.lifecycle import prompt_collapse_key
from app.notifications.models import (
    AttemptOutcome,
    DeliveryAttempt,
    Device,
    Notification,
    NotificationKind,
    NotificationStatus,
)
from app.notifications.providers import PushMessage, PushProvider, PushResult
from app.participants.models import Participant, ParticipantStatus

logger = logging.getLogger(__name__)

# Without an expiry a push may wait on FCM for a day at most.
DEFAULT_TTL = timedelta(days=1)

# Of these scheduled prompts, those answered or no longer fired since their reminders were
# written (scheduling answers: app.scheduling.fired_prompts.closed_prompts).
ClosedPrompts = Callable[[Session, Collection[uuid.UUID]], set[uuid.UUID]]


@dataclass(frozen=True)
class Outgoing:
    """A notification of a batch about to be pushed, as a budget filter needs it."""

    id: uuid.UUID
    participant_id: uuid.UUID
    kind: str
    scheduled_item_id: uuid.UUID | None


# Of a batch (in send order), the pushes not to send, with the reason (the daily push
# budget: app.decision_rules.push_budget.pushes_over_budget).
OverBudget = Callable[[Session, Sequence[Outgoing], datetime], dict[uuid.UUID, str]]


@dataclass(frozen=True)
class SendPolicy:
    max_attempts: int = 6
    base_backoff: timedelta = timedelta(seconds=30)
    max_backoff: timedelta = timedelta(hours=1)
    lease: timedelta = timedelta(seconds=120)
    batch_size: int = 500


@dataclass
class SendReport:
    claimed: int = 0
    sent: int = 0
    retrying: int = 0
    failed: int = 0
    expired: int = 0
    cancelled: int = 0
    lost: int = 0
    attempts: int = 0
    # attempts (one per device) by outcome class: accepted, invalid_token, retry, rejected
    outcomes: Counter[str] = field(default_factory=Counter)

    def add(self, other: "SendReport") -> None:
        for name in vars(other):
            setattr(self, name, getattr(self, name) + getattr(other, name))


def backoff(
    attempt: int, policy: SendPolicy, retry_after: float | None, rng: random.Random
) -> timedelta:
    """Exponential backoff with jitter (half to all of the doubled delay), never shorter
    than the provider's Retry-After."""
    schedule = Backoff(policy.base_backoff, policy.max_backoff, jitter=(0.5, 1.0))
    return schedule.delay(attempt, rng, at_least_seconds=retry_after)


# A notification waits (pending) until its send time and any retry time, is held (sending)
# by one sender while it pushes, then is settled.
OUTBOX = LeasedTable(
    model=Notification,
    waiting=NotificationStatus.pending,
    held=NotificationStatus.sending,
    order_by=Notification.send_at,
    due=lambda now: Notification.send_at <= now,
    ready=lambda now: sa.or_(
        Notification.next_attempt_at.is_(None), Notification.next_attempt_at <= now
    ),
)


def claim_sendable(
    session: Session, now: datetime, owner: str, lease: timedelta, limit: int
) -> list[uuid.UUID]:
    return claim(session, OUTBOX, now, owner, lease, limit)


@dataclass
class _Plan:
    """What to do with the claimed rows, worked out before any push."""

    messages: list[PushMessage] = field(default_factory=list)
    # notification id -> (status, reason) for rows settled without a push
    settled: dict[uuid.UUID, tuple[NotificationStatus, str]] = field(default_factory=dict)
    unreachable: set[uuid.UUID] = field(default_factory=set)  # participant ids


def _prepare(
    session: Session,
    ids: Sequence[uuid.UUID],
    owner: str,
    now: datetime,
    closed_prompts: ClosedPrompts,
    over_budget: OverBudget | None,
) -> _Plan:
    plan = _Plan()
    # Plain rows, not ORM objects: this runs for every push of a burst.
    n_ = Notification
    rows = session.execute(
        sa.select(
            n_.id,
            n_.participant_id,
            n_.kind,
            n_.scheduled_item_id,
            n_.title,
            n_.body,
            n_.deep_link,
            n_.data,
            n_.expires_at,
        )
        .where(n_.id.in_(ids), n_.lease_owner == owner)
        .order_by(n_.send_at, n_.id)
    ).all()
    statuses: dict[uuid.UUID, str] = {}
    devices: dict[uuid.UUID, list[tuple[uuid.UUID, str, str]]] = defaultdict(list)
    for pid, status, device_id, token, platform in session.execute(
        sa.select(Participant.id, Participant.status, Device.id, Device.push_token, Device.platform)
        .outerjoin(
            Device, sa.and_(Device.participant_id == Participant.id, Device.enabled.is_(True))
        )
        .where(Participant.id.in_({n.participant_id for n in rows}))
        .order_by(Device.id)
    ):
        statuses[pid] = status
        if device_id is not None:
            devices[pid].append((device_id, token, platform))
    closed = closed_prompts(
        session,
        {
            n.scheduled_item_id
            for n in rows
            if n.kind == NotificationKind.reminder and n.scheduled_item_id is not None
        },
    )
    live = [
        Outgoing(n.id, n.participant_id, n.kind, n.scheduled_item_id)
        for n in rows
        if (n.expires_at is None or n.expires_at > now)
        and statuses.get(n.participant_id) == ParticipantStatus.active
        and n.scheduled_item_id not in closed
    ]
    dropped = over_budget(session, live, now) if over_budget else {}
    for n in rows:
        if n.expires_at is not None and n.expires_at <= now:
            plan.settled[n.id] = (NotificationStatus.expired, "expired before it could be sent")
            continue
        if statuses.get(n.participant_id) != ParticipantStatus.active:
            plan.settled[n.id] = (
                NotificationStatus.cancelled,
                f"participant is {statuses.get(n.participant_id)}",
            )
            continue
        if n.scheduled_item_id in closed:
            plan.settled[n.id] = (NotificationStatus.cancelled, "prompt answered or closed")
            continue
        if n.id in dropped:
            plan.settled[n.id] = (NotificationStatus.cancelled, dropped[n.id])
            continue
        targets = devices.get(n.participant_id, [])
        if not targets:
            plan.settled[n.id] = (NotificationStatus.failed, "no enabled device")
            plan.unreachable.add(n.participant_id)
            continue
        ttl = (n.expires_at - now) if n.expires_at is not None else DEFAULT_TTL
        data = {str(k): str(v) for k, v in (n.data or {}).items()}
        data |= {"notification_id": str(n.id), "kind": n.kind, "deep_link": n.deep_link or ""}
        key = data.pop("collapse_key", None)
        if key is None and n.scheduled_item_id and n.kind != NotificationKind.intervention:
            key = prompt_collapse_key(n.scheduled_item_id)
        for device_id, token, device_platform in targets:
            plan.messages.append(
                PushMessage(
                    notification_id=n.id,
                    device_id=device_id,
                    token=token,
                    platform=str(device_platform),
                    title=n.title,
                    body=n.body,
                    data=data,
                    collapse_key=key,
                    ttl=ttl,
                    expires_at=n.expires_at,
                )
            )
    return plan


@dataclass
class _Owned:
    """What the finish step needs of a notification it still holds."""

    participant_id: uuid.UUID
    attempts: int
    expires_at: datetime | None


def _retake(
    session: Session, ids: Sequence[uuid.UUID], owner: str, now: datetime, lease: timedelta
) -> dict[uuid.UUID, _Owned]:
    """The guard: keep only rows still leased to us (locked until commit)."""
    rows = retake(
        session,
        OUTBOX,
        ids,
        owner,
        now,
        lease,
        Notification.participant_id,
        Notification.attempts,
        Notification.expires_at,
    )
    return {r.id: _Owned(r.participant_id, r.attempts, r.expires_at) for r in rows}


def _outcome(
    row: _Owned,
    attempt: int,
    outcomes: Sequence[PushResult],
    provider: PushProvider,
    policy: SendPolicy,
    now: datetime,
    rng: random.Random,
) -> tuple[NotificationStatus, str | None, datetime | None]:
    """The notification's status after this attempt: (status, reason, next attempt)."""
    if any(r.outcome is AttemptOutcome.accepted for r in outcomes):
        return NotificationStatus.sent, None, None
    retryable = [r for r in outcomes if r.outcome is AttemptOutcome.retry]
    if retryable:
        codes = ", ".join(sorted({r.error_code or "?" for r in retryable}))
        retry_after = max((r.retry_after_seconds or 0.0) for r in retryable) or None
        next_at = now + backoff(attempt, policy, retry_after, rng)
        if attempt >= policy.max_attempts:
            return NotificationStatus.failed, f"gave up after {attempt} attempts: {codes}", None
        if row.expires_at is not None and next_at >= row.expires_at:
            return NotificationStatus.expired, f"expired while retrying: {codes}", None
        return NotificationStatus.pending, f"retrying after: {codes}", next_at
    codes = ", ".join(sorted({r.error_code or "?" for r in outcomes}))
    if all(r.outcome is AttemptOutcome.invalid_token for r in outcomes):
        return NotificationStatus.failed, f"no reachable device: {codes}", None
    return NotificationStatus.failed, f"rejected by {provider.name}: {codes}", None


def _finish(
    session: Session,
    ids: Sequence[uuid.UUID],
    plan: _Plan,
    results: Sequence[PushResult],
    started_at: datetime,
    owner: str,
    provider: PushProvider,
    policy: SendPolicy,
    now: datetime,
    rng: random.Random,
) -> SendReport:
    # Set-based: one insert for the attempts, one update per distinct outcome, so that
    # settling a batch of 500 costs a handful of statements, not one per row.
    report = SendReport(claimed=len(ids))
    rows = _retake(session, ids, owner, now, policy.lease)
    report.lost = len(ids) - len(rows)
    by_notification: dict[uuid.UUID, list[tuple[PushMessage, PushResult]]] = defaultdict(list)
    for message, result in zip(plan.messages, results, strict=True):
        by_notification[message.notification_id].append((message, result))
    attempts: list[dict[str, object]] = []
    updates: list[dict[str, object]] = []
    dead_devices: dict[uuid.UUID, str] = {}
    reachable: set[uuid.UUID] = set()
    unreachable = set(plan.unreachable)
    for notification_id, pairs in by_notification.items():
        row = rows.get(notification_id)
        attempt = (row.attempts if row is not None else 0) + 1
        for message, result in pairs:
            attempts.append(
                {
                    "id": new_id(),
                    "notification_id": notification_id,
                    "device_id": message.device_id,
                    "provider": provider.name,
                    "attempt": attempt,
                    "outcome": result.outcome,
                    "error_code": result.error_code,
                    "retry_after_seconds": result.retry_after_seconds,
                    "response": result.response,
                    "started_at": started_at,
                    "finished_at": now,
                }
            )
            if result.outcome is AttemptOutcome.invalid_token:
                dead_devices[message.device_id] = f"{provider.name}: {result.error_code}"
            if result.alert:
                logger.error(
                    "push alert: %s rejected notification %s (%s): %s",
                    provider.name,
                    notification_id,
                    result.error_code,
                    result.response,
                )
        if row is None:
            continue  # another sender took it over; its attempts are recorded all the same
        status, reason, next_at = _outcome(
            row, attempt, [r for _, r in pairs], provider, policy, now, rng
        )
        updates.append(_update(notification_id, status, reason, attempt, next_at, now))
        if status is NotificationStatus.sent:
            reachable.add(row.participant_id)
        elif status is NotificationStatus.failed:
            unreachable.add(row.participant_id)
        report_field = "retrying" if status is NotificationStatus.pending else str(status)
        setattr(report, report_field, getattr(report, report_field) + 1)
    for notification_id, (status, reason) in plan.settled.items():
        row = rows.get(notification_id)
        if row is not None:
            updates.append(_update(notification_id, status, reason, row.attempts, None, None))
            setattr(report, str(status), getattr(report, str(status)) + 1)
            if status is NotificationStatus.failed:
                unreachable.add(row.participant_id)
    report.attempts = len(attempts)
    report.outcomes.update(str(a["outcome"]) for a in attempts)
    insert_rows(session, cast(sa.Table, DeliveryAttempt.__table__), attempts)
    update_by_id(session, Notification, updates)
    _update_devices(session, dead_devices, now)
    _update_reachability(session, unreachable - reachable, reachable, now)
    return report


def _update(
    notification_id: uuid.UUID,
    status: NotificationStatus,
    reason: str | None,
    attempts: int,
    next_attempt_at: datetime | None,
    sent_at: datetime | None,
) -> dict[str, object]:
    """One row's new values (rows with equal values are updated by one statement)."""
    return {
        "id": notification_id,
        "status": status,
        "status_reason": reason,
        "attempts": attempts,
        "next_attempt_at": next_attempt_at,
        "sent_at": sent_at if status is NotificationStatus.sent else None,
        "lease_owner": None,
        "lease_expires_at": None,
    }


def _update_devices(session: Session, dead: dict[uuid.UUID, str], now: datetime) -> None:
    for device_id, reason in dead.items():
        session.execute(
            sa.update(Device)
            .where(Device.id == device_id)
            .values(enabled=False, disabled_reason=reason[:200], updated_at=now)
            .execution_options(synchronize_session=False)
        )


def _update_reachability(
    session: Session, maybe_unreachable: set[uuid.UUID], reachable: set[uuid.UUID], now: datetime
) -> None:
    if reachable:
        session.execute(
            sa.update(Participant)
            .where(Participant.id.in_(reachable), Participant.unreachable_since.is_not(None))
            .values(unreachable_since=None, unreachable_reason=None)
            .execution_options(synchronize_session=False)
        )
    if not maybe_unreachable:
        return
    with_device = set(
        session.scalars(
            sa.select(Device.participant_id).where(
                Device.participant_id.in_(maybe_unreachable), Device.enabled.is_(True)
            )
        )
    )
    session.execute(
        sa.update(Participant)
        .where(
            Participant.id.in_(maybe_unreachable - with_device),
            Participant.unreachable_since.is_(None),
        )
        .values(
            unreachable_since=now,
            unreachable_reason="no enabled device: push tokens unregistered, invalid or missing",
        )
        .execution_options(synchronize_session=False)
    )


def send_batch(
    session_factory: sessionmaker[Session],
    clock: Clock,
    owner: str,
    provider: PushProvider,
    policy: SendPolicy,
    rng: random.Random | None = None,
    *,
    closed_prompts: ClosedPrompts,
    over_budget: OverBudget | None = None,
) -> SendReport:
    """Claim, push and settle one batch of due notifications."""
    rng = rng or random.Random()  # noqa: S311 (jitter, not security)
    limit = min(policy.batch_size, provider.max_batch)
    with session_scope(session_factory) as session:
        ids = claim_sendable(session, clock.now(), owner, policy.lease, limit)
    if not ids:
        return SendReport()
    with session_scope(session_factory) as session:
        plan = _prepare(session, ids, owner, clock.now(), closed_prompts, over_budget)
    started_at = clock.now()
    results = provider.send(plan.messages) if plan.messages else []
    if len(results) != len(plan.messages):
        raise RuntimeError(
            f"provider {provider.name} returned {len(results)} results for "
            f"{len(plan.messages)} messages"
        )
    with session_scope(session_factory) as session:
        return _finish(
            session, ids, plan, results, started_at, owner, provider, policy, clock.now(), rng
        )
