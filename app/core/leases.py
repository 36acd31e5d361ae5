"""Claiming rows with a lease: how every piece of durable work here is shared between
workers (due schedule rows, the push outbox, export jobs).

A claim is its own short transaction: waiting rows that are ready, and held rows whose
lease has expired (their worker died), become held by this worker until the lease ends.
The work is then done and settled in another transaction that first *retakes* the rows
(a guarded update: only rows still leased to this worker, locked until commit), so a worker
that lost its lease to another one settles nothing twice. On PostgreSQL the claim skips
rows another worker is locking; SQLite runs one writer at a time anyway.
"""

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import InstrumentedAttribute, Session
from sqlalchemy.sql.elements import ColumnElement

Condition = Callable[[datetime], ColumnElement[bool]]


@dataclass(frozen=True)
class LeasedTable:
    """A table of leased work: its model (with ``id``, ``status``, ``lease_owner`` and
    ``lease_expires_at`` columns), the status of rows waiting and of rows held, and when a
    row is ready."""

    model: Any
    waiting: str
    held: str
    # Oldest first.
    order_by: InstrumentedAttribute[Any]
    # Holds for every row that may be claimed, waiting or expired (e.g. it is due).
    due: Condition | None = None
    # Holds for a waiting row that may be claimed (e.g. its retry time has come).
    ready: Condition | None = None
    # Columns set on every claim besides status and lease (e.g. updated_at, started_at).
    stamps: tuple[str, ...] = field(default=())


def claim(
    session: Session, table: LeasedTable, now: datetime, owner: str, lease: timedelta, limit: int
) -> list[uuid.UUID]:
    """Lease up to ``limit`` claimable rows, the oldest, to ``owner``; their ids (in no
    particular order)."""
    m = table.model
    waiting = m.status == table.waiting
    if table.ready is not None:
        waiting = sa.and_(waiting, table.ready(now))
    conditions = [m.status.in_([table.waiting, table.held])]
    if table.due is not None:
        conditions.append(table.due(now))
    expired = sa.and_(m.status == table.held, m.lease_expires_at < now)
    conditions.append(sa.or_(waiting, expired))
    claimable = (
        sa.select(m.id)
        .where(*conditions)
        .order_by(table.order_by)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    values: dict[str, Any] = {
        "status": table.held,
        "lease_owner": owner,
        "lease_expires_at": now + lease,
    }
    values |= dict.fromkeys(table.stamps, now)
    return list(
        session.scalars(
            sa.update(m)
            .where(m.id.in_(claimable.scalar_subquery()))
            .values(**values)
            .returning(m.id)
            .execution_options(synchronize_session=False)
        ).all()
    )


def retake(
    session: Session,
    table: LeasedTable,
    ids: Sequence[uuid.UUID],
    owner: str,
    now: datetime,
    lease: timedelta,
    *returning: InstrumentedAttribute[Any],
) -> Sequence[sa.Row[Any]]:
    """The guard before settling: the rows of ``ids`` still leased to ``owner``, their lease
    renewed and locked until commit; each row is (id, *returning)."""
    m = table.model
    return session.execute(
        sa.update(m)
        .where(m.id.in_(ids), m.lease_owner == owner, m.status == table.held)
        .values(lease_expires_at=now + lease)
        .returning(m.id, *returning)
        .execution_options(synchronize_session=False)
    ).all()
