"""What the dose constraint needs from the database for a batch of decisions: each
participant's decision points still planned later in their local day, and (where the
protocol estimates availability) their decisions and available ones over the window.
Two queries for the batch, whatever its size."""

import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.decision_rules.bounds import Bound, bounds_table, count_per_bound
from app.decision_rules.calendar import next_midnight
from app.decision_rules.dose import DoseHistory
from app.decision_rules.models import Decision
from app.scheduling.models import ItemKind, ItemStatus, ScheduledItem


def dose_histories(
    session: Session,
    zones: Mapping[uuid.UUID, ZoneInfo],
    windows: Mapping[uuid.UUID, int | None],
    now: datetime,
) -> dict[uuid.UUID, DoseHistory]:
    """Per participant of ``zones``; ``windows`` gives each one's availability window in
    days (None: the protocol declares the share)."""
    if not zones:
        return {}
    keys = dict(enumerate(zones))
    later = bounds_table(
        session, [Bound(k, pid, now, next_midnight(now, zones[pid])) for k, pid in keys.items()]
    )
    s = ScheduledItem
    planned = dict(
        count_per_bound(
            session,
            later,
            s,
            s.participant_id == later.c.pid,
            s.due_at > later.c.s,
            s.due_at < later.c.e,
            s.kind == ItemKind.decision_point,
            s.status == ItemStatus.planned,
        )
    )
    recent = _recent_availability(session, keys, windows, now)
    result = {}
    for k, pid in keys.items():
        decided, available = recent.get(k, (0, 0)) if windows.get(pid) else (None, None)
        result[pid] = DoseHistory(planned.get(k, 0), decided, available)
    return result


def _recent_availability(
    session: Session,
    keys: Mapping[int, uuid.UUID],
    windows: Mapping[uuid.UUID, int | None],
    now: datetime,
) -> dict[int, tuple[int, int]]:
    """(decisions, available decisions) in each windowed participant's window, by key."""
    bounds = [
        Bound(k, pid, now - timedelta(days=days), now)
        for k, pid in keys.items()
        if (days := windows.get(pid))
    ]
    if not bounds:
        return {}
    b = bounds_table(session, bounds)
    d = Decision
    rows = session.execute(
        sa.select(b.c.k, sa.func.count(), sa.func.sum(sa.case((d.available, 1), else_=0)))
        .select_from(
            b.join(
                d, sa.and_(d.participant_id == b.c.pid, d.decided_at >= b.c.s, d.decided_at < b.c.e)
            )
        )
        .group_by(b.c.k)
    ).all()
    return {k: (int(n), int(available or 0)) for k, n, available in rows}
