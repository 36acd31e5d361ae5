"""Materialized schedules: a participant's EMA prompts and decision points as rows, some days
ahead, re-planned when their time zone, status or protocol version changes.

Idempotent by the unique (participant, slot_key): expanding twice, or in two workers at
once, gives the same rows. Re-planning only touches rows that have not fired: future rows
still `planned`, or `cancelled` by an earlier re-plan (a resumed participant gets them
back); fired, missed and claimed rows, and anything due in the past, are never rewritten.
"""

import functools
import uuid
from collections.abc import Callable, Sequence
from datetime import date, datetime, timedelta
from typing import cast
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from app.core.ids import new_id
from app.notifications.lifecycle import cancel_pending_for
from app.participants.models import Participant, ParticipantStatus
from app.protocols.document import Protocol
from app.protocols.store import protocol_of_version
from app.protocols.timing import Timing
from app.scheduling.models import ItemKind, ItemStatus, ScheduledItem, ScheduleHorizon
from app.scheduling.slots import Slot, local_dates, slots_on_day, weekday_of

# How far ahead rows exist, and how short the horizon may run before it is extended.
PLAN_AHEAD = timedelta(days=2)
EXTEND_WHEN_LESS_THAN = timedelta(days=1)
# Slot keys of event-triggered rows contain this; re-planning leaves them alone.
TRIGGER_MARK = "-trigger:"

_REPLANNABLE = (ItemStatus.planned, ItemStatus.cancelled)


def participant_zone(participant: Participant) -> ZoneInfo:
    return ZoneInfo(participant.timezone)


def study_day_zero(participant: Participant, zone: ZoneInfo) -> date | None:
    """Study day 0 is the local date of enrollment."""
    if participant.enrolled_at is None:
        return None
    return participant.enrolled_at.astimezone(zone).date()


def protocol_of(session: Session, participant: Participant) -> Protocol | None:
    version = participant.protocol_version
    if version is None:
        return None
    return protocol_of_version(session, participant.study_id, version)


def is_schedulable(participant: Participant) -> bool:
    return (
        participant.status == ParticipantStatus.active
        and participant.enrolled_at is not None
        and participant.protocol_version is not None
    )


def desired_slots(
    participant: Participant, protocol: Protocol, start: datetime, end: datetime
) -> list[Slot]:
    """Every fixed-time and random-window slot due in [start, end), including the ones that
    do not fire because of a DST change (``Slot.fires`` is false; they become cancelled rows)."""
    zone = participant_zone(participant)
    day_zero = study_day_zero(participant, zone)
    if day_zero is None:
        return []
    last_day = protocol.study.last_day
    blocks = [(s, ItemKind.ema_prompt) for s in protocol.ema_schedules] + [
        (p, ItemKind.decision_point) for p in protocol.decision_points
    ]

    def active_on(block: Timing) -> Callable[[date], bool]:
        def active(day: date) -> bool:
            return block.is_active_on((day - day_zero).days, weekday_of(day), last_day)

        return active

    slots = []
    for day in local_dates(start, end, zone):
        for block, kind in blocks:
            if not (block.times or block.random_windows):
                continue
            active = active_on(block)
            if not active(day):
                continue
            for slot in slots_on_day(
                block,
                kind,
                day,
                zone,
                study_seed=protocol.study.random_seed,
                participant_id=participant.id,
                active=active,
            ):
                if start <= slot.due_at < end:
                    slots.append(slot)
    return slots


def _insert(dialect: str) -> type[postgresql.Insert] | type[sqlite.Insert]:
    # Both dialects speak INSERT … ON CONFLICT; SQLAlchemy has one construct per dialect.
    return postgresql.Insert if dialect == "postgresql" else sqlite.Insert


def item_row(participant: Participant, slot: Slot, now: datetime) -> dict[str, object]:
    return {
        "id": new_id(),
        "participant_id": participant.id,
        "study_id": participant.study_id,
        "protocol_version": participant.protocol_version,
        "kind": str(slot.kind),
        "slot_key": slot.slot_key,
        "source_id": slot.source_id,
        "questionnaire_id": slot.questionnaire_id,
        "due_at": slot.due_at,
        "expires_at": slot.expires_at,
        "draw": slot.draw,
        # A slot that does not fire (a DST merge or skipped date) keeps its row, cancelled with
        # the reason, so every (schedule, date, index) is accounted for.
        "status": str(ItemStatus.planned if slot.fires else ItemStatus.cancelled),
        "status_reason": slot.cancel_reason,
        "created_at": now,
        "updated_at": now,
    }


def upsert_slots(
    session: Session, participant: Participant, slots: Sequence[Slot], now: datetime
) -> None:
    """Insert new slots; refresh (or revive) existing rows that have not fired yet. Slots
    that do not fire (DST merges) are written cancelled, with their reason."""
    if not slots:
        return
    rows = sorted((item_row(participant, s, now) for s in slots), key=lambda r: str(r["slot_key"]))
    session.execute(_upsert_statement(session.get_bind().dialect.name), rows)


@functools.cache
def _upsert_statement(dialect: str) -> sa.Insert:
    # Built once per dialect and run with the rows as parameters: building the statement
    # with the rows in it, and its cache key, cost more than running it.
    # The Core table: the ORM's bulk insert would split the rows by which values are None.
    table = cast(sa.Table, ScheduledItem.__table__)
    insert = _insert(dialect)(table)
    excluded = insert.excluded
    refreshed = ("protocol_version", "source_id", "questionnaire_id", "due_at", "expires_at")
    # Every row's updated_at is the time of planning (item_row), so ``excluded.updated_at``
    # is "now" without a parameter outside the rows; an IN list would be one, too.
    return insert.on_conflict_do_update(
        index_elements=["participant_id", "slot_key"],
        set_={
            **{name: excluded[name] for name in refreshed},
            "draw": excluded.draw,
            "status": excluded.status,
            "status_reason": excluded.status_reason,
            "updated_at": excluded.updated_at,
        },
        where=sa.and_(
            sa.or_(*(table.c.status == str(s) for s in _REPLANNABLE)),
            table.c.due_at > excluded.updated_at,
        ),
    )


def insert_items_once(session: Session, rows: Sequence[dict[str, object]]) -> None:
    """Insert rows whose slot key may exist already (event replays): the first one wins."""
    if not rows:
        return
    session.execute(_insert_once_statement(session.get_bind().dialect.name), list(rows))


@functools.cache
def _insert_once_statement(dialect: str) -> sa.Insert:
    # Built once, of the Core table (see _upsert_statement); every triggering event runs it.
    table = cast(sa.Table, ScheduledItem.__table__)
    insert = _insert(dialect)(table)
    return insert.on_conflict_do_nothing(index_elements=["participant_id", "slot_key"])


def _set_horizon(
    session: Session, participant_id: uuid.UUID, until: datetime, now: datetime
) -> None:
    session.execute(
        _horizon_statement(session.get_bind().dialect.name),
        {"participant_id": participant_id, "planned_until": until, "updated_at": now},
    )


@functools.cache
def _horizon_statement(dialect: str) -> sa.Insert:
    # Built once: every participant's horizon is moved daily.
    table = cast(sa.Table, ScheduleHorizon.__table__)
    insert = _insert(dialect)(table)
    return insert.on_conflict_do_update(
        index_elements=["participant_id"],
        set_={
            "planned_until": insert.excluded.planned_until,
            "updated_at": insert.excluded.updated_at,
        },
    )


def cancel_pending(session: Session, participant: Participant, now: datetime, reason: str) -> int:
    """Cancel every row of the participant that has not fired, and their unsent pushes."""
    result = session.execute(
        sa.update(ScheduledItem)
        .where(
            ScheduledItem.participant_id == participant.id,
            ScheduledItem.status == ItemStatus.planned,
        )
        .values(status=ItemStatus.cancelled, status_reason=reason, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    cancel_pending_for(session, participant.id, reason)
    session.execute(
        sa.delete(ScheduleHorizon).where(ScheduleHorizon.participant_id == participant.id)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def replan(session: Session, now: datetime, participant: Participant, reason: str) -> None:
    """Bring the participant's future rows in line with their current time zone, status and
    protocol version. Call it in the transaction that changes them."""
    session.flush()
    protocol = protocol_of(session, participant) if is_schedulable(participant) else None
    if protocol is None:
        cancel_pending(session, participant, now, reason)
        return
    end = now + PLAN_AHEAD
    slots = desired_slots(participant, protocol, now, end)
    upsert_slots(session, participant, slots, now)
    keep = [s.slot_key for s in slots]
    session.execute(
        sa.update(ScheduledItem)
        .where(
            ScheduledItem.participant_id == participant.id,
            ScheduledItem.status == ItemStatus.planned,
            ScheduledItem.due_at > now,
            ScheduledItem.slot_key.not_like(f"%{TRIGGER_MARK}%"),
            ScheduledItem.slot_key.not_in(keep) if keep else sa.true(),
        )
        .values(status=ItemStatus.cancelled, status_reason=reason, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    _cancel_orphaned_triggers(session, participant, protocol, now, reason)
    _set_horizon(session, participant.id, end, now)


def _cancel_orphaned_triggers(
    session: Session, participant: Participant, protocol: Protocol, now: datetime, reason: str
) -> None:
    # Triggered rows keep their due time across time-zone changes (it is a delay after an
    # event); only a protocol that no longer has their schedule or decision point drops them.
    sources = {
        str(ItemKind.ema_prompt): [s.id for s in protocol.ema_schedules if s.triggers],
        str(ItemKind.decision_point): [p.id for p in protocol.decision_points if p.triggers],
    }
    for kind, ids in sources.items():
        session.execute(
            sa.update(ScheduledItem)
            .where(
                ScheduledItem.participant_id == participant.id,
                ScheduledItem.kind == kind,
                ScheduledItem.status == ItemStatus.planned,
                ScheduledItem.due_at > now,
                ScheduledItem.slot_key.like(f"%{TRIGGER_MARK}%"),
                ScheduledItem.source_id.not_in(ids) if ids else sa.true(),
            )
            .values(status=ItemStatus.cancelled, status_reason=reason, updated_at=now)
            .execution_options(synchronize_session=False)
        )


def extend_horizon(session: Session, now: datetime, participant: Participant) -> int:
    """Materialize the slots between the current horizon and PLAN_AHEAD from now."""
    if not is_schedulable(participant):
        return 0
    protocol = protocol_of(session, participant)
    horizon = session.get(ScheduleHorizon, participant.id)
    start = now if horizon is None else max(now, horizon.planned_until)
    end = now + PLAN_AHEAD
    slots = desired_slots(participant, protocol, start, end) if protocol is not None else []
    upsert_slots(session, participant, slots, now)
    _set_horizon(session, participant.id, end, now)
    return sum(1 for s in slots if s.fires)


def participants_needing_plans(
    session: Session, now: datetime, limit: int
) -> Sequence[Participant]:
    """Active participants whose horizon runs short, locked so other workers skip them."""
    return session.scalars(
        _needing_plans_statement(),
        {"horizon_before": now + EXTEND_WHEN_LESS_THAN, "plan_limit": limit},
    ).all()


@functools.cache
def _needing_plans_statement() -> sa.Select[Participant]:
    # Every worker tick asks, and most find no one: built once, with parameters.
    return (
        sa.select(Participant)
        .outerjoin(ScheduleHorizon, ScheduleHorizon.participant_id == Participant.id)
        .where(
            Participant.status == ParticipantStatus.active,
            Participant.enrolled_at.is_not(None),
            Participant.protocol_version.is_not(None),
            sa.or_(
                ScheduleHorizon.planned_until.is_(None),
                ScheduleHorizon.planned_until < sa.bindparam("horizon_before"),
            ),
        )
        .order_by(Participant.id)
        .limit(sa.bindparam("plan_limit", type_=sa.Integer()))
        .with_for_update(of=Participant, skip_locked=True)
    )
