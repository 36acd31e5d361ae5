"""Wearable summaries: the summarized period ends within the window, and the summary was
received at or before the decision time."""

from collections.abc import Sequence
from typing import Any, ClassVar

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.decision_rules.bounds import Bound, bounds_table
from app.decision_rules.sources.aggregates import mode, pick_windowed, read_window
from app.decision_rules.sources.base import Queried, Row
from app.protocols.document import TailoringVariable, WearableVariable
from app.sensing.models import WearableSummary


class WearableReader(Queried):
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
        order = (w.end_at, w.id)
        return read_window(session, joined, b, how, value=w.value, number=w.value, order=order)

    def pick(self, variable: TailoringVariable, row: Row | None) -> Any:
        assert isinstance(variable, WearableVariable)  # noqa: S101
        return pick_windowed(variable, row)
