"""Proximal outcomes of a page of decisions, computed set-wise in SQL for the export.

The definitions are those of ``app.decision_rules.outcomes`` (which serves the history API
a batch of ``Decision`` objects at a time): for each outcome the window runs from the
decision time to ``window_minutes_after`` later, and the value is None while the window is
still open, when there is no data, and for decisions whose option the outcome does not
apply to. Here the database computes the windows from the decisions table itself, one
query per outcome definition per page, so nothing travels per decision but the values.
"""

from collections import defaultdict
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.orm import aliased

from app.core.db import UTCDateTime
from app.decision_rules.models import Decision
from app.decision_rules.outcomes import prorated
from app.ema.models import EmaAnswer
from app.engagement.models import EngagementEvent
from app.export.sql import AnySelect, uuid_text
from app.protocols.document import EmaOutcome, ProximalOutcome, WearableOutcome
from app.sensing.models import WearableSummary

# Restricts a statement over ``decisions`` to the decisions of one page.
Scope = Callable[[AnySelect], AnySelect]
# Decision id (as text) -> the outcome's value, for the decisions that have one.
Values = dict[str, Any]


def page_outcomes(
    connection: Connection,
    scope: Scope,
    definitions: Sequence[tuple[int, ProximalOutcome]],
    names: Sequence[str],
    now: datetime,
) -> list[Values]:
    """For each outcome name, the values of the page's decisions. ``definitions`` are the
    (protocol version, outcome) pairs of the export; a decision gets the definition of its
    own protocol version. Values are as exported: engagement outcomes (and true/false EMA
    answers) are 1.0/0.0."""
    found: dict[str, Values] = {name: {} for name in names}
    sqlite = connection.dialect.name == "sqlite"
    decision_id = uuid_text(Decision.id, sqlite=sqlite)
    for version, outcome in definitions:
        values = found.get(outcome.name)
        if values is None:
            continue
        end = _window_end(outcome.window_minutes_after, sqlite=sqlite)
        eligible = [Decision.protocol_version == version, end <= sa.literal(now, UTCDateTime())]
        if outcome.options is not None:
            eligible.append(Decision.option_id.in_(outcome.options))

        def decisions(
            stmt: AnySelect, eligible: list[sa.ColumnElement[bool]] = eligible
        ) -> AnySelect:
            return scope(stmt).where(*eligible)

        if isinstance(outcome, EmaOutcome):
            values.update(_ema(connection, decisions, outcome, end, decision_id))
        elif isinstance(outcome, WearableOutcome):
            values.update(_wearable(connection, decisions, outcome, end, decision_id))
        else:
            values.update(_engagement(connection, decisions, outcome.event, end, decision_id))
    return [found[name] for name in names]


def _window_end(minutes: int, *, sqlite: bool) -> sa.ColumnElement[datetime]:
    if sqlite:
        # SQLite keeps UTC times as text "YYYY-MM-DD HH:MM:SS.ffffff" and its date functions
        # round to milliseconds: add the whole minutes to the whole seconds and keep the
        # microseconds as written, which is exact.
        whole = sa.func.strftime(
            "%Y-%m-%d %H:%M:%S", sa.func.substr(Decision.decided_at, 1, 19), f"+{minutes} minutes"
        )
        return sa.type_coerce(whole.concat(sa.func.substr(Decision.decided_at, 20)), UTCDateTime())
    # Plain timestamp arithmetic (interval parameter), typed back for the comparisons.
    plain = sa.type_coerce(Decision.decided_at, sa.DateTime(timezone=True))
    return sa.type_coerce(plain + timedelta(minutes=minutes), UTCDateTime())


def _number(value: Any) -> Any:
    return float(value) if isinstance(value, bool) else value


def _ema(
    connection: Connection,
    decisions: Scope,
    outcome: EmaOutcome,
    end: sa.ColumnElement[datetime],
    decision_id: sa.ColumnElement[str],
) -> Values:
    """The first answer to the item after the decision, up to the end of the window."""
    questionnaire, _, item = outcome.item.partition(".")
    candidate = aliased(EmaAnswer)
    conditions = [
        candidate.participant_id == Decision.participant_id,
        candidate.item_id == item,
        candidate.answered_at > Decision.decided_at,
        candidate.answered_at <= end,
    ]
    if questionnaire != "*":
        conditions.append(candidate.questionnaire_id == questionnaire)
    ordered = sa.select(candidate).where(*conditions).order_by(candidate.answered_at, candidate.id)
    if connection.dialect.name == "postgresql":
        # A lateral join: one index probe per decision. (Joined on a correlated subquery
        # instead, the planner hashes the whole answers table for every page.)
        first = aliased(EmaAnswer, ordered.limit(1).lateral("first_answer"))
        joined = sa.select(Decision).join(first, sa.true())
    else:  # no LATERAL in SQLite, which runs the correlated subquery per decision
        first = aliased(EmaAnswer)
        subquery = ordered.with_only_columns(candidate.id).limit(1).correlate(Decision)
        joined = sa.select(Decision).join(first, first.id == subquery.scalar_subquery())
    # The answer as given (JSON) only where it is not a number: decoding is the cost.
    value = sa.case((first.numeric_value.is_(None), first.value))
    stmt = decisions(joined.with_only_columns(decision_id, first.numeric_value, value))
    return {
        decision: _number(numeric if numeric is not None else value)
        for decision, numeric, value in connection.execute(stmt).all()
    }


def _wearable(
    connection: Connection,
    decisions: Scope,
    outcome: WearableOutcome,
    end: sa.ColumnElement[datetime],
    decision_id: sa.ColumnElement[str],
) -> Values:
    """The summaries overlapping the window, prorated (``prorated``)."""
    w = WearableSummary
    stmt = decisions(
        sa.select(decision_id, Decision.decided_at, w.start_at, w.end_at, w.value)
        .select_from(Decision)
        .join(
            w,
            sa.and_(
                w.participant_id == Decision.participant_id,
                w.metric == str(outcome.metric),
                w.start_at < end,
                w.end_at > Decision.decided_at,
            ),
        )
        .order_by(Decision.id, w.start_at, w.end_at)
    )
    periods: dict[str, list[tuple[datetime, datetime, float]]] = defaultdict(list)
    starts: dict[str, datetime] = {}
    for decision, decided_at, start, stop, value in connection.execute(stmt).all():
        periods[decision].append((start, stop, value))
        starts[decision] = decided_at
    window = timedelta(minutes=outcome.window_minutes_after)
    values: Values = {}
    for decision, overlapping in periods.items():
        start = starts[decision]
        value = prorated(overlapping, start, start + window, outcome.aggregate)
        if value is not None:
            values[decision] = value
    return values


def _engagement(
    connection: Connection,
    decisions: Scope,
    event: str,
    end: sa.ColumnElement[datetime],
    decision_id: sa.ColumnElement[str],
) -> Values:
    """1.0 if the participant had such an event in the window, else 0.0, whatever the arm
    (so that the "nothing" arm has the outcome too)."""
    e = EngagementEvent
    happened = sa.exists().where(
        e.participant_id == Decision.participant_id,
        e.kind == event,
        e.occurred_at >= Decision.decided_at,
        e.occurred_at <= end,
    )
    stmt = decisions(sa.select(decision_id, happened).select_from(Decision))
    return {decision: float(bool(seen)) for decision, seen in connection.execute(stmt).all()}
