"""Claiming rows with a lease: how every piece of durable work here is shared between
workers (due schedule rows, the push outbox, export jobs).

A claim is its own short transaction: waiting rows that are ready, and held rows whose
lease has expired (their worker died), become held by this worker until the lease ends.
The work is then done and settled in another transaction that first *retakes* the rows
(a guarded update: only rows still leased to this worker, locked until commit), so a worker
that lost its lease to another one settles nothing twice. On PostgreSQL the claim skips
rows another worker is locking; SQLite runs one writer at a time anyway.
"""

import logging
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import InstrumentedAttribute, Session, sessionmaker
from sqlalchemy.sql.elements import ColumnElement

from app.core.clock import Clock
from app.core.db import UTCDateTime, is_database_unavailable, session_scope

logger = logging.getLogger(__name__)

# Called with "now" as a bound parameter: claim statements are built once and reused.
Condition = Callable[[Any], ColumnElement[bool]]


@dataclass(frozen=True)
class LeasedTable:
    """A table of leased work: its model (with an ``id``), the status of rows waiting and
    of rows held, and when a row is ready. The status and lease columns are the model's
    ``status``, ``lease_owner`` and ``lease_expires_at`` unless named otherwise."""

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
    status_column: InstrumentedAttribute[Any] | None = None
    owner_column: InstrumentedAttribute[Any] | None = None
    expires_column: InstrumentedAttribute[Any] | None = None

    @property
    def status(self) -> InstrumentedAttribute[Any]:
        return self._column(self.status_column, "status")

    @property
    def owner(self) -> InstrumentedAttribute[Any]:
        return self._column(self.owner_column, "lease_owner")

    @property
    def expires(self) -> InstrumentedAttribute[Any]:
        return self._column(self.expires_column, "lease_expires_at")

    def _column(
        self, named: InstrumentedAttribute[Any] | None, default: str
    ) -> InstrumentedAttribute[Any]:
        if named is not None:
            return named
        column: InstrumentedAttribute[Any] = getattr(self.model, default)
        return column


def claim(
    session: Session,
    table: LeasedTable,
    now: datetime,
    owner: str,
    lease: timedelta,
    limit: int,
    *,
    only: Sequence[uuid.UUID] | None = None,
) -> list[uuid.UUID]:
    """Lease up to ``limit`` claimable rows (of ``only`` when given), the oldest, to
    ``owner``; their ids (in no particular order)."""
    params = {"claim_now": now, "claim_owner": owner, "claim_until": now + lease}
    if only is None:
        # A worker claims on every tick, mostly finding nothing: the statement is built once.
        stmt = _claims.get(id(table))
        if stmt is None or stmt[0] is not table:
            stmt = _claims[id(table)] = (table, _claim_statement(table, None))
        return list(session.scalars(stmt[1], params | {"claim_limit": limit}).all())
    return list(
        session.scalars(_claim_statement(table, only), params | {"claim_limit": limit}).all()
    )


_claims: dict[int, tuple[LeasedTable, Any]] = {}


def _claim_statement(table: LeasedTable, only: Sequence[uuid.UUID] | None) -> Any:
    m, status = table.model, table.status
    now = sa.bindparam("claim_now", type_=UTCDateTime())
    waiting = status == table.waiting
    if table.ready is not None:
        waiting = sa.and_(waiting, table.ready(now))
    conditions = [status.in_([table.waiting, table.held])]
    if only is not None:
        conditions.append(m.id.in_(list(only)))
    if table.due is not None:
        conditions.append(table.due(now))
    expired = sa.and_(status == table.held, table.expires < now)
    conditions.append(sa.or_(waiting, expired))
    claimable = (
        sa.select(m.id)
        .where(*conditions)
        .order_by(table.order_by)
        .limit(sa.bindparam("claim_limit", type_=sa.Integer()))
        .with_for_update(skip_locked=True)
    )
    values: dict[str, Any] = {
        table.status.key: table.held,
        table.owner.key: sa.bindparam("claim_owner", type_=table.owner.type),
        table.expires.key: sa.bindparam("claim_until", type_=UTCDateTime()),
    }
    values |= dict.fromkeys(table.stamps, now)
    return (
        sa.update(m)
        .where(m.id.in_(claimable.scalar_subquery()))
        .values(**values)
        .returning(m.id)
        .execution_options(synchronize_session=False)
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
        .where(m.id.in_(ids), table.owner == owner, table.status == table.held)
        .values({table.expires.key: now + lease})
        .returning(m.id, *returning)
        .execution_options(synchronize_session=False)
    ).all()


def run_one(
    session_factory: sessionmaker[Session],
    clock: Clock,
    table: LeasedTable,
    worker_id: str,
    lease: timedelta,
    work: Callable[[uuid.UUID], Mapping[str, Any]],
    *,
    done: str,
    failed: str,
) -> bool:
    """Claim the oldest waiting job of ``table`` and run ``work(job_id)`` outside any
    transaction; then settle it as ``done`` with the columns ``work`` returns, or as
    ``failed`` with the error. False when there was no job. A database outage leaves the
    job held: its lease lapses and it runs again."""
    with session_scope(session_factory) as session:
        ids = claim(session, table, clock.now(), worker_id, lease, 1)
    if not ids:
        return False
    (job_id,) = ids
    try:
        values: dict[str, Any] = {table.status.key: done, **work(job_id)}
    except Exception as exc:
        if is_database_unavailable(exc):
            raise
        logger.exception("%s %s failed", table.model.__tablename__, job_id)
        values = {table.status.key: failed, "error": str(exc)}
    values |= {"finished_at": clock.now(), table.owner.key: None}
    with session_scope(session_factory) as session:
        session.execute(
            sa.update(table.model)
            .where(table.model.id == job_id)
            .values(**values)
            .execution_options(synchronize_session=False)
        )
    return True
