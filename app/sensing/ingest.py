"""Accepting a batch of wearable summaries from the phone.

A summary is one metric over one period. Devices re-sync and correct themselves, so a
summary for the same participant, metric and period replaces the stored value (an upsert);
sending the same value again is a duplicate and changes nothing. Accepted summaries
publish one ``wearable_received`` event per batch, in the same transaction.
"""

import functools
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from app.core.batches import (
    ItemProblem,
    ItemResult,
    ItemStatus,
    TimeBounds,
    rejected,
    sa_table,
)
from app.core.clock import Clock
from app.core.events import ParticipantEvent, publish
from app.core.ids import new_id
from app.participants.models import Participant
from app.protocols.tailoring import WearableMetric
from app.protocols.timing import Event
from app.sensing.models import WearableSummary
from app.sensing.units import normalize

# A summary covers at most this long a period.
MAX_PERIOD = timedelta(days=31)

Key = tuple[str, datetime, datetime]


@dataclass(frozen=True)
class SummaryInput:
    index: int
    client_id: str | None
    metric: WearableMetric
    unit: str
    start_at: datetime
    end_at: datetime
    value: float
    source_format: str  # "kairos" or "omh"
    # Where the period, unit and value are in the item, for error messages.
    period_field: str = "start"
    unit_field: str = "unit"
    value_field: str = "value"


@dataclass
class _Row:
    index: int
    client_id: str | None
    key: Key
    unit: str
    value: float
    source_format: str
    id: uuid.UUID | None = None  # of a stored row


def submit_summaries(
    session: Session,
    clock: Clock,
    participant: Participant,
    inputs: Sequence[SummaryInput],
    *,
    skew: timedelta,
) -> list[ItemResult]:
    """Judge and upsert a batch; the caller commits. Results come back in index order.

    Within one batch, summaries for the same period apply in order: the last one wins.
    """
    now = clock.now()
    bounds = TimeBounds.for_participant(participant, now, skew)
    results: dict[int, ItemResult] = {}
    rows: list[_Row] = []
    for item in inputs:
        row = _judge(item, bounds)
        if isinstance(row, list):
            results[item.index] = rejected(item.index, item.client_id, row)
        else:
            rows.append(row)

    stored = _stored(session, participant, rows)
    latest: dict[Key, _Row] = {}
    changed: dict[Key, bool] = {}
    for row in rows:
        previous = latest.get(row.key) or stored.get(row.key)
        same = previous is not None and (previous.unit, previous.value) == (row.unit, row.value)
        latest[row.key] = row
        changed[row.key] = changed.get(row.key, False) or not same
        if same:
            results[row.index] = ItemResult(row.index, row.client_id, ItemStatus.duplicate)
        else:
            results[row.index] = ItemResult(
                row.index, row.client_id, ItemStatus.accepted, replaced=previous is not None
            )

    to_write = [row for key, row in latest.items() if changed[key]]
    # The stored rows' ids, overlaid by those the upsert returns (a row written meanwhile by
    # a concurrent batch keeps its id, which RETURNING gives).
    ids = {key: row.id for key, row in stored.items() if row.id is not None}
    ids |= _upsert(session, participant, now, to_write)
    for row in rows:
        results[row.index].id = ids.get(row.key)
    if to_write:
        newest = max(to_write, key=lambda r: r.key[2])
        publish(
            session,
            clock,
            ParticipantEvent(
                kind=Event.wearable_received,
                participant_id=participant.id,
                study_id=participant.study_id,
                occurred_at=now,
                reference_id=ids.get(newest.key),
            ),
        )
    return [results[item.index] for item in inputs]


def _judge(item: SummaryInput, bounds: TimeBounds) -> _Row | list[ItemProblem]:
    problems = []
    start, end = item.start_at.astimezone(UTC), item.end_at.astimezone(UTC)
    if end < start:
        problems.append(ItemProblem(item.period_field, "the period ends before it starts"))
    elif end - start > MAX_PERIOD:
        problems.append(ItemProblem(item.period_field, "a summary covers at most 31 days"))
    # The period's end decides: a day summary that began before enrollment (the enrollment
    # day) is kept, one that ended before it is not.
    time_problem = bounds.problem(item.period_field, end)
    if time_problem is not None:
        problems.append(time_problem)
    minutes = max((end - start).total_seconds() / 60, 0.0)
    normalized = normalize(item.metric, item.unit, item.value, minutes)
    if isinstance(normalized, str):
        field = item.unit_field if "unit" in normalized else item.value_field
        problems.append(ItemProblem(field, normalized))
    if problems or isinstance(normalized, str):
        return problems
    return _Row(
        item.index,
        item.client_id,
        (str(item.metric), start, end),
        normalized.unit,
        normalized.value,
        item.source_format,
    )


@functools.cache
def _stored_statement() -> sa.Select[Any]:
    """Built once (every upload of every phone runs it), of the Core table: no ORM entities."""
    c = sa_table(WearableSummary).c
    return sa.select(c.metric, c.start_at, c.end_at, c.unit, c.value, c.id).where(
        c.participant_id == sa.bindparam("participant_id"),
        c.metric.in_(sa.bindparam("metrics", expanding=True)),
        c.start_at >= sa.bindparam("first_start"),
        # Implied (a period never ends before it starts), and it bounds the range read
        # through ix_wearable_summaries_participant_metric_end, which otherwise runs from
        # the participant's first summary.
        c.end_at >= sa.bindparam("first_start"),
        c.end_at <= sa.bindparam("last_end"),
    )


def _stored(session: Session, participant: Participant, rows: list[_Row]) -> dict[Key, _Row]:
    """Summaries already stored for the batch's periods (one range query)."""
    if not rows:
        return {}
    keys = {row.key for row in rows}
    found = session.execute(
        _stored_statement(),
        {
            "participant_id": participant.id,
            "metrics": sorted({key[0] for key in keys}),
            "first_start": min(key[1] for key in keys),
            "last_end": max(key[2] for key in keys),
        },
    )
    stored = {}
    for metric, start, end, unit, value, id_ in found:
        key = (metric, start, end)
        if key in keys:
            stored[key] = _Row(-1, None, key, unit, value, "", id_)
    return stored


def _upsert(
    session: Session, participant: Participant, now: datetime, rows: list[_Row]
) -> dict[Key, uuid.UUID]:
    """Write the rows; the id of each row written (new, or the one it replaced)."""
    if not rows:
        return {}
    found = session.execute(
        _upsert_statement(session.get_bind().dialect.name),
        [
            {
                "id": new_id(),
                "participant_id": participant.id,
                "study_id": participant.study_id,
                "client_id": row.client_id,
                "metric": row.key[0],
                "unit": row.unit,
                "start_at": row.key[1],
                "end_at": row.key[2],
                "value": row.value,
                "source_format": row.source_format,
                "received_at": now,
                "updated_at": now,
            }
            # In key order, so concurrent batches lock rows in the same order.
            for row in sorted(rows, key=lambda r: r.key)
        ],
    )
    return {(metric, start, end): id_ for metric, start, end, id_ in found}


# Built once per dialect: building an upsert (its ``excluded`` columns above all) costs more
# than running it for a batch of a few summaries.
_UPSERTS: dict[str, Any] = {}


def _upsert_statement(dialect: str) -> Any:
    stmt = _UPSERTS.get(dialect)
    if stmt is None:
        table = sa_table(WearableSummary)
        insert = postgresql.insert(table) if dialect == "postgresql" else sqlite.insert(table)
        excluded = insert.excluded
        stmt = _UPSERTS[dialect] = insert.on_conflict_do_update(
            index_elements=["participant_id", "metric", "start_at", "end_at"],
            set_={
                "unit": excluded.unit,
                "value": excluded.value,
                "client_id": excluded.client_id,
                "source_format": excluded.source_format,
                "updated_at": excluded.updated_at,
            },
        ).returning(table.c.metric, table.c.start_at, table.c.end_at, table.c.id)
    return stmt
