"""The two ways windowed sources (EMA, wearables) read their rows: aggregates over the
window, or its latest value; and picking a variable's value from them."""

from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.decision_rules.sources.base import Row
from app.protocols.document import Aggregate, ValueType
from app.protocols.tailoring import WindowedVariable


def mode(variable: WindowedVariable) -> str:
    return "latest" if variable.aggregate is Aggregate.latest else "aggregate"


def pick_windowed(variable: WindowedVariable, row: Row | None) -> Any:
    if variable.aggregate is Aggregate.count:
        return row["count"] if row else 0
    if row is None:
        return None
    if variable.aggregate is Aggregate.latest:
        if variable.type in (ValueType.boolean, ValueType.string, ValueType.string_list):
            return row["value"]
        return row["numeric"]
    return row[str(variable.aggregate)]


def aggregate(
    joined: sa.Join, b: sa.Subquery, number: Any, row_id: Any, session: Session
) -> dict[int, Row]:
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


def latest(
    joined: sa.Join,
    b: sa.Subquery,
    value: Any,
    number: Any,
    order: tuple[Any, Any],
    session: Session,
) -> dict[int, Row]:
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


def read_window(
    session: Session,
    joined: sa.Join,
    b: sa.Subquery,
    how: str,
    *,
    value: Any,
    number: Any,
    order: tuple[Any, Any],
) -> dict[int, Row]:
    """The latest row or the aggregates of every window, as the shape's ``how`` asks; the
    last column of ``order`` is the rows' id."""
    if how == "latest":
        return latest(joined, b, value, number, order, session)
    return aggregate(joined, b, number, order[1], session)
