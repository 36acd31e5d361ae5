"""Wearable summaries: the summarized period ends within the window, and the summary was
received at or before the decision time."""

from collections.abc import Sequence
from typing import Any, ClassVar

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.decision_rules.bounds import Bound, bounds_table
from app.decision_rules.sources.aggregates import aggregate, latest, mode, pick_windowed
from app.decision_rules.sources.base import Row, Subject
from app.protocols.document import TailoringVariable, WearableVariable
from app.sensing.models import WearableSummary


class WearableReader:
    source: ClassVar[str] = "wearable"

    def shape(self, variable: TailoringVariable) -> tuple[str, ...]:
        assert isinstance(variable, WearableVariable)  # noqa: S101 - the registry's key
        return ("wearable", str(variable.metric), mode(variable))

    def query(
        self, session: Session, shape: tuple[str, ...], bounds: Sequence[Bound]
    ) -> dict[int, Row]:
        _, metric, how = shape
        b = bounds_table(session, bounds)
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
        if how == "latest":
            return latest(joined, b, w.value, w.value, (w.end_at, w.id), session)
        return aggregate(joined, b, w.value, w.id, session)

    def pick(self, variable: TailoringVariable, row: Row | None) -> Any:
        assert isinstance(variable, WearableVariable)  # noqa: S101
        return pick_windowed(variable, row)

    def value(self, subject: Subject, variable: TailoringVariable) -> Any:
        raise TypeError("wearable variables are read by query")
