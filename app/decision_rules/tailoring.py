"""Tailoring variables for a batch of participants at once.

Each variable of each participant becomes one row of a bounds table (its own window), and
variables that read the same data (the same EMA item, wearable metric, or the prompts
sent) share one aggregate query: the number of queries depends on the protocol's
variables, not on the number of participants.

Only data that existed at the decision time counts:
- EMA answers: answered (``ema_answers.answered_at``, the device's time of answering) at or
  before the decision time. Live, an answer that is still on an offline phone is not in the
  database and cannot count; the decision log keeps the values actually used. (Checking
  the response's ``received_at`` too would cost a join per answer: it made the batch
  several times slower.)
- wearable summaries: the summarized period ends within the window, and the summary was
  received at or before the decision time;
- prompts sent: intervention notifications created within the window, not cancelled.
Windows run from their start (inclusive) to the decision time (inclusive).
"""

import uuid
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cached_property
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.decision_rules.bounds import Bound, bounds_table
from app.decision_rules.calendar import baseline_end, start_of_local_day, study_day
from app.ema.models import EmaAnswer
from app.notifications.models import Notification, NotificationKind, NotificationStatus
from app.protocols.document import (
    Aggregate,
    AttributeVariable,
    EmaVariable,
    EnrollmentVariable,
    NotificationsVariable,
    Protocol,
    TailoringVariable,
    ValueType,
    WearableVariable,
)
from app.protocols.tailoring import WindowedVariable, window_span
from app.sensing.models import WearableSummary


@dataclass(frozen=True)
class Subject:
    """Whose variables to compute, and when."""

    participant_id: uuid.UUID
    at: datetime
    zone: ZoneInfo
    enrolled_at: datetime | None
    attributes: Mapping[str, Any]
    protocol: Protocol

    @cached_property
    def today_start(self) -> datetime:
        """Local midnight of the decision's day (several variables use it)."""
        return start_of_local_day(self.at, self.zone)


@dataclass
class Tailoring:
    # Every variable by name: its value, the default when there was no data, or None.
    values: dict[str, Any] = field(default_factory=dict)
    # Variables without data that took their default.
    defaulted: list[str] = field(default_factory=list)
    # Variables without data and without a default: the participant is unavailable.
    missing: list[str] = field(default_factory=list)

    def present(self) -> dict[str, Any]:
        """The values rules can see (missing variables are left out of the CEL context)."""
        return {k: v for k, v in self.values.items() if k not in self.missing}


def convert(value: Any, value_type: ValueType) -> Any:
    """A raw value as the variable's CEL type: integer -> int, number -> float."""
    if value is None:
        return None
    if value_type is ValueType.integer and not isinstance(value, bool):
        return round(value)
    if value_type is ValueType.number and not isinstance(value, bool):
        return float(value)
    if value_type is ValueType.string_list:
        return list(value)
    return value


def finish(protocol: Protocol, raw: Mapping[str, Any]) -> Tailoring:
    """Apply defaults and types to raw values (None = no data)."""
    result = Tailoring()
    for variable in protocol.tailoring_variables:
        value = raw.get(variable.name)
        if value is None and variable.default is not None:
            value = variable.default
            result.defaulted.append(variable.name)
        elif value is None:
            result.missing.append(variable.name)
        result.values[variable.name] = convert(value, variable.type)
    return result


@dataclass(frozen=True)
class _Planned:
    """A queried variable with what is needed to place its window, worked out once per
    protocol rather than once per participant."""

    variable: TailoringVariable
    shape: tuple[str, ...]
    # A trailing window's length; None for "today" or a baseline.
    span: timedelta | None
    baseline_days: int | None


def _plan(protocol: Protocol) -> list[_Planned]:
    planned = []
    for variable in protocol.tailoring_variables:
        shape = _shape(protocol, variable)
        if shape is None:
            continue
        assert isinstance(variable, WindowedVariable | NotificationsVariable)  # noqa: S101
        baseline = getattr(variable, "baseline_days", None)
        span = window_span(variable.window) if variable.window is not None else None
        planned.append(_Planned(variable, shape, span, baseline))
    return planned


def _window(subject: Subject, planned: _Planned) -> tuple[datetime, datetime] | None:
    """Start and end of the variable's window for the subject; None if it has none yet."""
    at = subject.at
    if planned.baseline_days is not None:
        if subject.enrolled_at is None:
            return None
        end = min(at, baseline_end(subject.enrolled_at, planned.baseline_days, subject.zone))
        return subject.enrolled_at, end
    if planned.span is None:
        return subject.today_start, at
    return at - planned.span, at


def _shape(protocol: Protocol, variable: TailoringVariable) -> tuple[str, ...] | None:
    """Variables with the same shape read the same rows and share one query."""
    if isinstance(variable, EmaVariable):
        questionnaire, _, item = variable.item.partition(".")
        mode = "latest" if variable.aggregate is Aggregate.latest else "aggregate"
        return ("ema", questionnaire, item, mode)
    if isinstance(variable, WearableVariable):
        mode = "latest" if variable.aggregate is Aggregate.latest else "aggregate"
        return ("wearable", str(variable.metric), mode)
    if isinstance(variable, NotificationsVariable):
        return ("notifications",)
    return None


def compute_tailoring(session: Session, subjects: Sequence[Subject]) -> list[Tailoring]:
    """Every subject's tailoring variables at its decision time."""
    raw: list[dict[str, Any]] = [{} for _ in subjects]
    plans: dict[int, list[_Planned]] = {}
    groups: dict[tuple[str, ...], list[tuple[int, _Planned]]] = defaultdict(list)
    for index, subject in enumerate(subjects):
        protocol = subject.protocol
        plan = plans.get(id(protocol))
        if plan is None:
            plan = plans[id(protocol)] = _plan(protocol)
        values = raw[index]
        for variable in protocol.tailoring_variables:
            if isinstance(variable, EnrollmentVariable):
                values[variable.name] = (
                    None
                    if subject.enrolled_at is None
                    else study_day(subject.at, subject.enrolled_at, subject.zone)
                )
            elif isinstance(variable, AttributeVariable):
                values[variable.name] = subject.attributes.get(variable.attribute)
        for planned in plan:
            groups[planned.shape].append((index, planned))
    for shape, requests in groups.items():
        bounds: list[Bound] = []
        for key, (index, planned) in enumerate(requests):
            subject = subjects[index]
            window = _window(subject, planned)
            if window is not None:
                bounds.append(Bound(key, subject.participant_id, window[0], window[1]))
        found = _query(session, shape, bounds) if bounds else {}
        for key, (index, planned) in enumerate(requests):
            raw[index][planned.variable.name] = _pick(planned.variable, found.get(key))
    return [finish(subject.protocol, values) for subject, values in zip(subjects, raw, strict=True)]


# Per key: count, mean, sum, min, max (aggregate shapes) or the latest value.
_Row = dict[str, Any]


def _pick(variable: TailoringVariable, row: _Row | None) -> Any:
    if isinstance(variable, NotificationsVariable):
        return row["count"] if row else 0
    assert isinstance(variable, WindowedVariable)  # noqa: S101
    if variable.aggregate is Aggregate.count:
        return row["count"] if row else 0
    if row is None:
        return None
    if variable.aggregate is Aggregate.latest:
        if variable.type in (ValueType.boolean, ValueType.string, ValueType.string_list):
            return row["value"]
        return row["numeric"]
    return row[str(variable.aggregate)]


def _query(session: Session, shape: tuple[str, ...], bounds: Sequence[Bound]) -> dict[int, _Row]:
    b = bounds_table(session, bounds)
    if shape[0] == "ema":
        _, questionnaire, item, mode = shape
        a = EmaAnswer
        on = [
            a.participant_id == b.c.pid,
            a.item_id == item,
            a.answered_at >= b.c.s,
            a.answered_at <= b.c.e,
        ]
        if questionnaire != "*":
            on.append(a.questionnaire_id == questionnaire)
        joined = b.join(a, sa.and_(*on))
        if mode == "latest":
            return _latest(joined, b, a.value, a.numeric_value, (a.answered_at, a.id), session)
        return _aggregate(joined, b, a.numeric_value, a.id, session)
    if shape[0] == "wearable":
        _, metric, mode = shape
        w = WearableSummary
        joined = b.join(
            w,
            sa.and_(
                w.participant_id == b.c.pid,
                w.metric == metric,
                w.end_at >= b.c.s,
                w.end_at <= b.c.e,
                w.received_at <= b.c.e,
            ),
        )
        if mode == "latest":
            return _latest(joined, b, w.value, w.value, (w.end_at, w.id), session)
        return _aggregate(joined, b, w.value, w.id, session)
    n = Notification
    joined = b.join(
        n,
        sa.and_(
            n.participant_id == b.c.pid,
            n.kind == NotificationKind.intervention,
            n.status != NotificationStatus.cancelled,
            n.created_at >= b.c.s,
            n.created_at <= b.c.e,
        ),
    )
    rows = session.execute(
        sa.select(b.c.k, sa.func.count(n.id)).select_from(joined).group_by(b.c.k)
    ).all()
    return {k: {"count": count} for k, count in rows}


def _aggregate(
    joined: sa.Join, b: sa.Subquery, number: Any, row_id: Any, session: Session
) -> dict[int, _Row]:
    stmt = (
        sa.select(
            b.c.k,
            sa.func.count(row_id),
            sa.func.avg(number),
            sa.func.sum(number),
            sa.func.min(number),
            sa.func.max(number),
        )
        .select_from(joined)
        .group_by(b.c.k)
    )
    return {
        k: {"count": count, "mean": mean, "sum": total, "min": low, "max": high}
        for k, count, mean, total, low, high in session.execute(stmt).all()
    }


def _latest(
    joined: sa.Join,
    b: sa.Subquery,
    value: Any,
    number: Any,
    order: tuple[Any, Any],
    session: Session,
) -> dict[int, _Row]:
    ranked = (
        sa.select(
            b.c.k.label("k"),
            value.label("value"),
            number.label("numeric"),
            sa.func.row_number()
            .over(partition_by=b.c.k, order_by=(order[0].desc(), order[1].desc()))
            .label("rank"),
        )
        .select_from(joined)
        .subquery("ranked")
    )
    stmt = sa.select(ranked.c.k, ranked.c.value, ranked.c.numeric).where(ranked.c.rank == 1)
    return {k: {"value": v, "numeric": num} for k, v, num in session.execute(stmt).all()}
