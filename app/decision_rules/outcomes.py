"""Proximal outcomes of logged decisions, computed when read (history, export).

For each outcome the protocol names, the window runs from the decision time to
``window_minutes_after`` later:
- ema: the first answer to the item in the window (its number, or the answer as given);
- wearable: the sum (or time-weighted mean) of the summaries overlapping the window, each
  prorated by the share of its period inside the window;
- engagement: whether the participant had such an event in the window (true/false),
  whatever the arm, so that the "nothing" arm has the outcome too.
The value is None while the window is still open, when there is no data, and for decisions
whose option the outcome does not apply to.
"""

import uuid
from collections import defaultdict
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from typing import Protocol as Interface

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.decision_rules.bounds import Bound, bounds_table
from app.ema.models import EmaAnswer
from app.engagement.models import EngagementEvent
from app.protocols.document import (
    EmaOutcome,
    ProximalOutcome,
    WearableOutcome,
)
from app.protocols.store import protocols_of_versions
from app.sensing.models import WearableSummary


@dataclass(frozen=True)
class _Ask:
    decision: int
    outcome: ProximalOutcome


def _shape(outcome: ProximalOutcome) -> tuple[str, ...]:
    if isinstance(outcome, EmaOutcome):
        questionnaire, _, item = outcome.item.partition(".")
        return ("ema", questionnaire, item)
    if isinstance(outcome, WearableOutcome):
        return ("wearable", str(outcome.metric))
    return ("engagement", outcome.event)


class Decided(Interface):
    """What the outcomes of a decision depend on: a decision-log row, or its columns."""

    @property
    def study_id(self) -> uuid.UUID: ...
    @property
    def participant_id(self) -> uuid.UUID: ...
    @property
    def protocol_version(self) -> int | None: ...
    @property
    def option_id(self) -> str | None: ...
    @property
    def decided_at(self) -> datetime: ...


def proximal_outcomes(
    session: Session,
    decisions: Sequence[Decided],
    *,
    now: datetime,
    names: Collection[str] | None = None,
) -> list[dict[str, Any]]:
    """For each decision, its protocol's proximal outcomes by name (one query per kind of
    data, whatever the number of decisions); only those in ``names`` if given."""
    protocols = protocols_of_versions(
        session,
        {(d.study_id, d.protocol_version) for d in decisions if d.protocol_version is not None},
    )
    results: list[dict[str, Any]] = [{} for _ in decisions]
    groups: dict[tuple[str, ...], list[_Ask]] = defaultdict(list)
    for index, decision in enumerate(decisions):
        protocol = protocols.get((decision.study_id, decision.protocol_version or 0))
        for outcome in protocol.proximal_outcomes if protocol else ():
            if names is not None and outcome.name not in names:
                continue
            results[index][outcome.name] = None
            if outcome.options is not None and decision.option_id not in outcome.options:
                continue
            if decision.decided_at + timedelta(minutes=outcome.window_minutes_after) > now:
                continue  # the window is still open
            groups[_shape(outcome)].append(_Ask(index, outcome))
    for shape, asks in groups.items():
        bounds = [
            Bound(
                key,
                decisions[ask.decision].participant_id,
                decisions[ask.decision].decided_at,
                decisions[ask.decision].decided_at
                + timedelta(minutes=ask.outcome.window_minutes_after),
            )
            for key, ask in enumerate(asks)
        ]
        values = _query(session, shape, bounds, asks)
        for key, ask in enumerate(asks):
            results[ask.decision][ask.outcome.name] = values.get(key)
        if shape[0] == "engagement":
            for key, ask in enumerate(asks):
                results[ask.decision][ask.outcome.name] = bool(values.get(key))
    return results


def _query(
    session: Session, shape: tuple[str, ...], bounds: Sequence[Bound], asks: Sequence[_Ask]
) -> dict[int, Any]:
    b = bounds_table(session, bounds)
    if shape[0] == "ema":
        _, questionnaire, item = shape
        a = EmaAnswer
        on = [a.participant_id == b.c.pid, a.item_id == item, a.answered_at > b.c.s]
        on.append(a.answered_at <= b.c.e)
        if questionnaire != "*":
            on.append(a.questionnaire_id == questionnaire)
        ranked = (
            sa.select(
                b.c.k.label("k"),
                a.value.label("value"),
                a.numeric_value.label("numeric"),
                sa.func.row_number()
                .over(partition_by=b.c.k, order_by=(a.answered_at, a.id))
                .label("rank"),
            )
            .select_from(b.join(a, sa.and_(*on)))
            .subquery("ranked")
        )
        first = session.execute(
            sa.select(ranked.c.k, ranked.c.value, ranked.c.numeric).where(ranked.c.rank == 1)
        ).all()
        return {k: numeric if numeric is not None else value for k, value, numeric in first}
    if shape[0] == "wearable":
        w = WearableSummary
        periods = session.execute(
            sa.select(b.c.k, w.start_at, w.end_at, w.value).select_from(
                b.join(
                    w,
                    sa.and_(
                        w.participant_id == b.c.pid,
                        w.metric == shape[1],
                        w.start_at < b.c.e,
                        w.end_at > b.c.s,
                    ),
                )
            )
        ).all()
        return _prorate(periods, bounds, asks)
    e = EngagementEvent
    counts = session.execute(
        sa.select(b.c.k, sa.func.count(e.id))
        .select_from(
            b.join(
                e,
                sa.and_(
                    e.participant_id == b.c.pid,
                    e.kind == shape[1],
                    e.occurred_at >= b.c.s,
                    e.occurred_at <= b.c.e,
                ),
            )
        )
        .group_by(b.c.k)
    ).all()
    return {k: count > 0 for k, count in counts}


def _prorate(
    rows: Sequence[sa.Row[int, datetime, datetime, float]],
    bounds: Sequence[Bound],
    asks: Sequence[_Ask],
) -> dict[int, float]:
    periods: dict[int, list[tuple[datetime, datetime, float]]] = defaultdict(list)
    for k, start, end, value in rows:
        periods[k].append((start, end, value))
    result = {}
    for k, overlapping in periods.items():
        ask = asks[k].outcome
        assert isinstance(ask, WearableOutcome)  # noqa: S101
        found = prorated(overlapping, bounds[k].start, bounds[k].end, ask.aggregate)
        if found is not None:
            result[k] = found
    return result


def prorated(
    periods: Iterable[tuple[datetime, datetime, float]],
    start: datetime,
    end: datetime,
    aggregate: str,
) -> float | None:
    """A wearable outcome over the window [start, end] from the summaries overlapping it:
    the sum of each summary's value times the share of its period inside the window; for
    `mean`, the time-weighted mean over the covered part of the window. None when no
    summary overlaps the window by more than an instant."""
    total = covered = 0.0
    counted = False
    for period_start, period_end, value in periods:
        overlap = (min(period_end, end) - max(period_start, start)).total_seconds()
        length = (period_end - period_start).total_seconds()
        if length <= 0 or overlap <= 0:
            continue
        total += value * overlap / length if aggregate == "sum" else value * overlap
        covered += overlap
        counted = True
    if not counted:
        return None
    return total if aggregate == "sum" else total / covered
