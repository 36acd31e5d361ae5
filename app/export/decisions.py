"""The decisions dataset: the MRT long format, one row per decision point.

Decisions are read a page at a time (keyset on id) as plain column tuples, never as ORM
objects: one query brings the decision, the participant's code, the notification it
created, its delivery status and engagement; the tailoring snapshot and the probabilities
arrive as JSON text and are decoded by ``json.loads`` directly (the probabilities, which
repeat, once per distinct value). The proximal outcomes are computed set-wise in SQL, one
query per outcome per page (``app.export.outcomes``). On PostgreSQL the pages are read
one ahead on a connection of their own in the session's snapshot (``read_ahead``), so that
the database and the formatting use both cores. Memory and the number of queries per row
stay bounded.
"""

import json
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from itertools import repeat
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.orm import InstrumentedAttribute, Session, aliased

from app.decision_rules.models import Decision
from app.engagement.models import EngagementEvent
from app.export.columns import (
    Column,
    ColumnType,
    Filters,
    Row,
    boolean,
    integer,
    json_text,
    number,
    string,
    timestamp,
)
from app.export.outcomes import Values, page_outcomes
from app.export.protocols import covered_versions
from app.export.read_ahead import read_ahead
from app.export.sql import AnySelect, uuid_text
from app.notifications.models import Notification
from app.participants.models import Participant
from app.protocols.document import Protocol, ProximalOutcome
from app.protocols.interventions import Category
from app.protocols.store import load_protocol
from app.studies.models import Study

PAGE = 5_000
TAILORING_PREFIX = "tv_"
OUTCOME_PREFIX = "outcome_"

FIXED_COLUMNS = [
    string("decision_id", "Kairos id of the decision-log row."),
    string("participant_id", "Kairos participant id (UUID)."),
    string("participant_code", "The study's pseudonymous participant code."),
    integer("decision_index", "The participant's decision index 0, 1, 2 … in time order."),
    string("decision_point_id", "The protocol's decision point."),
    timestamp("planned_at", "When the decision point was due."),
    timestamp("decided_at", "When the decision was made."),
    string("local_time", "The participant's wall-clock time then (ISO 8601 with offset)."),
    string("timezone", "The participant's IANA time zone then."),
    integer("protocol_version", "The protocol version the decision used."),
    integer("study_day", "Days since enrollment (0 is the enrollment day)."),
    string("stage", "SMART stage."),
    string("track", "SMART track."),
    boolean("available", "Whether the participant was available (the MRT's I_t)."),
    string("unavailable_reason", "Why not, when unavailable."),
    string("rule_id", "The rule that fired."),
    boolean("randomized", "Whether the option was drawn at random."),
    json_text("probabilities", "Every option's probability as used by the draw (JSON)."),
    number("probability", "P(treated = 1): the probability of delivering any prompt (p_t)."),
    integer("seed", "The generator seed of the draw: (study seed, participant, decision)."),
    number("draw", "The uniform draw that chose the option."),
    string("action", "The intervention option chosen (the 'none' option included)."),
    integer("treated", "1 if a prompt was chosen (an option not of category none), else 0."),
    number("option_probability", "The probability of the option chosen."),
    boolean("fallback", "The protocol's fallback decided because deciding failed."),
    string("error", "What failed, for fallback decisions."),
    string("note", "Anything else noteworthy (e.g. no rule matched)."),
    string("pai_recommendation", "The Personalized Advantage Index recommendation."),
    string("notification_id", "The push created, if any."),
    string("delivery_status", "pending, sent, failed, expired or cancelled."),
    timestamp("sent_at", "When the push provider accepted it."),
    boolean("opened", "The participant opened the prompt."),
    boolean("exercise_completed", "The participant completed the prompt's exercise."),
    json_text(
        "learning",
        "What a learning policy did (empty for rule-table decisions, JSON): posterior_id, "
        "features, effect_mean, effect_variance, probability_unclipped, probability_clipped, "
        "fallback, fallback_reason.",
    ),
    json_text(
        "dose",
        "What the dose constraint did (empty where it does not apply, JSON): target_per_day, "
        "delivered_today, later_decision_points, availability, availability_source, "
        "recent_decisions, recent_available, expected_points, probability_unclipped, "
        "probability.",
    ),
    string("phase", "The participant's treatment phase (stepped care) at the decision."),
    number(
        "burden_factor",
        "The burden factor in force: 1, or the fatigue response's prompt_budget_factor "
        "while a fatigue episode was open (empty for decisions logged before it was kept).",
    ),
]

_VALUE_TYPES = {
    "integer": ColumnType.integer,
    "boolean": ColumnType.boolean,
    "string": ColumnType.string,
}


def _protocols(session: Session, study: Study, filters: Filters) -> dict[int, Protocol]:
    return {row.version: load_protocol(row) for row in covered_versions(session, study, filters)}


def decision_columns(session: Session, study: Study, filters: Filters) -> list[Column]:
    """The fixed columns, then every tailoring variable and proximal outcome of the study's
    protocol versions (prefixed tv_ and outcome_)."""
    variables: dict[str, Column] = {}
    outcomes: dict[str, Column] = {}
    for protocol in _protocols(session, study, filters).values():
        for variable in protocol.tailoring_variables:
            name = TAILORING_PREFIX + variable.name
            kind = _VALUE_TYPES.get(str(getattr(variable, "type", "number")), ColumnType.number)
            meaning = f"Tailoring variable {variable.name} ({variable.source}) at decision time."
            variables.setdefault(name, Column(name, kind, meaning))
        for outcome in protocol.proximal_outcomes:
            name = OUTCOME_PREFIX + outcome.name
            meaning = (
                f"Proximal outcome {outcome.name} ({outcome.source}, "
                f"{outcome.window_minutes_after} min after the decision); engagement "
                "outcomes are 1/0."
            )
            outcomes.setdefault(name, number(name, meaning))
    return [*FIXED_COLUMNS, *variables.values(), *outcomes.values()]


def decision_rows(
    session: Session, study: Study, filters: Filters, columns: list[Column], now: datetime
) -> Iterator[Row]:
    """The rows, ids (decision, participant, notification) as text."""
    protocols = _protocols(session, study, filters)
    nones = {
        version: frozenset(o.id for o in p.intervention_options if o.category == Category.none)
        for version, p in protocols.items()
    }
    variables, outcomes = _extra_columns(columns)
    reader = _Pages(
        study,
        filters,
        nones,
        [(v, o) for v, p in protocols.items() for o in p.proximal_outcomes],
        outcomes,
        now,
    )
    if session.get_bind().dialect.name == "sqlite":
        pages = reader.read(session.connection())
    else:
        # The database reads the next page (and its outcomes) while this one is formatted.
        pages = read_ahead(session, reader.read)
    probabilities = _Probabilities(nones)
    # One call for the whole document (json.loads adds two and a regex per call).
    loads = json.JSONDecoder().raw_decode
    for page, values in pages:
        # The loop runs a million times for a large study: C-level iteration (map) and
        # local names, not calls per value.
        for row in page:
            known = probabilities.known.get((row[9], row[17]))
            text, p_treated = known or probabilities.add(row[9], row[17])
            tailoring = loads(row[36])[0]
            yield (
                *row[:17],
                text,
                p_treated if row[13] else None,
                *row[18:32],
                _learning_text(row[32]),
                _learning_text(row[33]),
                row[34],
                row[35],
                *map(tailoring.get, variables),
                *map(dict.get, values, repeat(row[0])),
            )


@dataclass(frozen=True)
class _Pages:
    """Reads the decisions a page at a time (keyset on id), each with its outcomes."""

    study: Study
    filters: Filters
    nones: Mapping[int, frozenset[str]]
    definitions: list[tuple[int, ProximalOutcome]]
    outcomes: list[str]
    now: datetime

    def read(self, connection: Connection) -> Iterator[tuple[Sequence[Any], list[Values]]]:
        sqlite = connection.dialect.name == "sqlite"
        # psycopg builds timestamptz values in the connection's time zone: UTC for this
        # transaction, so that they need no conversion per value (_utc); put back at the end.
        zone = None if sqlite else _set_zone(connection, "UTC")
        first_page = _page_statement(self.study, self.filters, self.nones, sqlite=sqlite)
        after: uuid.UUID | None = None
        while True:
            stmt = first_page if after is None else first_page.where(Decision.id > after)
            page = connection.execute(stmt).all()
            if not page:
                break
            last = uuid.UUID(page[-1][0])
            scope = partial(self._scope, first=after, last=last)
            yield page, page_outcomes(connection, scope, self.definitions, self.outcomes, self.now)
            after = last
        if zone is not None:
            _set_zone(connection, zone)

    def _scope(self, stmt: AnySelect, *, first: uuid.UUID | None, last: uuid.UUID) -> AnySelect:
        """``stmt`` over the decisions of the page after ``first`` up to ``last``."""
        stmt = _filtered(stmt, self.study, self.filters).where(Decision.id <= last)
        return stmt if first is None else stmt.where(Decision.id > first)


def _set_zone(connection: Connection, zone: str) -> str:
    """Sets the time zone for the rest of the transaction; returns the previous one."""
    previous = str(connection.scalar(sa.text("SELECT current_setting('TimeZone')")))
    connection.execute(sa.text("SELECT set_config('TimeZone', :zone, true)"), {"zone": zone})
    return previous


def _extra_columns(columns: list[Column]) -> tuple[list[str], list[str]]:
    """The tailoring variables and the outcomes the columns after the fixed ones name (tv_*
    first, then outcome_*, as ``decision_columns`` lists them)."""
    names = [c.name for c in columns[len(FIXED_COLUMNS) :]]
    variables = [n for n in names if n.startswith(TAILORING_PREFIX)]
    outcomes = [n for n in names if not n.startswith(TAILORING_PREFIX)]
    if names != variables + outcomes or not all(n.startswith(OUTCOME_PREFIX) for n in outcomes):
        raise ValueError("decision columns must be the fixed ones, then tv_*, then outcome_*")
    return (
        [n.removeprefix(TAILORING_PREFIX) for n in variables],
        [n.removeprefix(OUTCOME_PREFIX) for n in outcomes],
    )


def _filtered(stmt: AnySelect, study: Study, filters: Filters) -> AnySelect:
    stmt = stmt.where(Decision.study_id == study.id)
    if filters.participant_ids:
        stmt = stmt.where(Decision.participant_id.in_(filters.participant_ids))
    if filters.start is not None:
        stmt = stmt.where(Decision.decided_at >= filters.start)
    if filters.end is not None:
        stmt = stmt.where(Decision.decided_at < filters.end)
    if filters.protocol_version is not None:
        stmt = stmt.where(Decision.protocol_version == filters.protocol_version)
    return stmt


def _page_statement(
    study: Study, filters: Filters, nones: Mapping[int, frozenset[str]], *, sqlite: bool
) -> AnySelect:
    """The first page; the next ones add ``Decision.id > <last id>``. The columns are in
    the order of FIXED_COLUMNS, except that the probabilities come as JSON text at 17 (and
    P(treated) is computed from them), the learning and dose records as JSON text at 32
    and 33, the phase at 34, the burden factor at 35, and the tailoring snapshot comes last."""
    d = Decision
    ids = partial(uuid_text, sqlite=sqlite)
    utc = partial(_utc, sqlite=sqlite)
    (n_id, n_status, n_sent_at, opened, completed), join_notification = _notification(sqlite=sqlite)
    stmt = (
        sa.select(
            ids(d.id),
            ids(d.participant_id),
            Participant.code,
            d.decision_index,
            d.decision_point_id,
            utc(d.planned_at),
            utc(d.decided_at),
            d.local_time,
            d.timezone,
            d.protocol_version,
            d.study_day,
            d.stage,
            d.track,
            d.available,
            d.unavailable_reason,
            d.rule_id,
            d.randomized,
            sa.cast(d.probabilities, sa.Text),
            d.seed,
            d.draw,
            d.option_id,
            _treated(nones),
            d.probability,
            d.fallback,
            d.error,
            d.note,
            d.pai_recommendation,
            ids(n_id),
            n_status,
            utc(n_sent_at),
            opened,
            completed,
            sa.cast(d.learning, sa.Text),
            sa.cast(d.dose, sa.Text),
            d.phase,
            d.burden_factor,
            sa.cast(d.tailoring, sa.Text),
        )
        .join(Participant, Participant.id == d.participant_id)
        .order_by(d.id)
        .limit(PAGE)
    )
    return _filtered(join_notification(stmt), study, filters)


def _notification(*, sqlite: bool) -> tuple[list[Any], Callable[[AnySelect], AnySelect]]:
    """The decision's notification (id, status, sent_at) and whether it was opened and its
    exercise completed (None without a notification), and how to join it to a page.

    One notification per decision by construction; should there be more, the latest (by
    id) is taken rather than the decision's row repeated."""
    n, e = Notification, EngagementEvent

    def engaged(kind: str) -> sa.Exists:
        return sa.exists().where(e.notification_id == n.id, e.kind == kind)

    if not sqlite:
        # A lateral join: index probes per decision. (As a plain join with EXISTS columns
        # the planner merges or hashes whole notification and engagement tables per page.)
        latest = (
            sa.select(
                n.id,
                n.status,
                n.sent_at,
                engaged("prompt_opened").label("opened"),
                engaged("exercise_completed").label("completed"),
            )
            .where(n.decision_id == Decision.id)
            .order_by(n.id.desc())
            .limit(1)
            .lateral("notification")
        )
        columns = [latest.c.id, latest.c.status, latest.c.sent_at]
        return [*columns, latest.c.opened, latest.c.completed], lambda stmt: stmt.outerjoin(
            latest, sa.true()
        )
    # SQLite runs nested loops over the indexes anyway, and has no LATERAL.
    later = aliased(Notification)
    only = ~sa.exists().where(later.decision_id == Decision.id, later.id > n.id)
    unless_none = [
        sa.type_coerce(sa.case((n.id.is_(None), sa.null()), else_=engaged(kind)), sa.Boolean())
        for kind in ("prompt_opened", "exercise_completed")
    ]
    return (
        [n.id, n.status, n.sent_at, *unless_none],
        lambda stmt: stmt.outerjoin(n, sa.and_(n.decision_id == Decision.id, only)),
    )


def _utc(
    column: sa.ColumnElement[Any] | InstrumentedAttribute[Any], *, sqlite: bool
) -> sa.ColumnElement[Any] | InstrumentedAttribute[Any]:
    """On PostgreSQL, the datetimes psycopg builds (in UTC: ``_Pages.read`` sets the time
    zone), without the per-value conversion of UTCDateTime; SQLite needs it (naive text)."""
    return column if sqlite else sa.type_coerce(column, sa.DateTime(timezone=True))


def _treated(nones: Mapping[int, frozenset[str]]) -> sa.ColumnElement[int]:
    """1 if a prompt was chosen (an option not of category none in the decision's
    protocol version), else 0."""
    d = Decision
    return sa.case(
        (d.option_id.is_(None), 0),
        *(
            (sa.and_(d.protocol_version == version, d.option_id.in_(sorted(ids))), 0)
            for version, ids in nones.items()
            if ids
        ),
        else_=1,
    )


def _learning_text(raw: str | None) -> str | None:
    """A learning or dose record as JSON text with sorted keys (PostgreSQL's JSONB and
    SQLite give different text for the same document), or None where there is none."""
    if raw is None or raw == "null":
        return None
    return json.dumps(json.loads(raw), sort_keys=True)


class _Probabilities:
    """The exported probabilities text and P(treated = 1) of a probabilities JSON text, per
    protocol version. Decisions share a handful of distinct probabilities (one per rule
    and situation), so each is decoded and summed once."""

    LIMIT = 10_000  # distinct values kept; beyond, start over (memory stays bounded)

    def __init__(self, nones: Mapping[int, frozenset[str]]) -> None:
        self._nones = nones
        # (protocol version, JSON text) -> (exported text, P(treated)).
        self.known: dict[tuple[int | None, str], tuple[str, float | None]] = {}

    def add(self, version: int | None, raw: str) -> tuple[str, float | None]:
        if len(self.known) >= self.LIMIT:
            self.known.clear()
        found = self.known[(version, raw)] = self._compute(version, raw)
        return found

    def _compute(self, version: int | None, raw: str) -> tuple[str, float | None]:
        probabilities: dict[str, float] = json.loads(raw)
        if not probabilities:
            return json.dumps(probabilities, sort_keys=True), None
        # The MRT's randomization probability: P(a prompt of any kind is delivered).
        nones = self._nones.get(version or 0, frozenset())
        treated = float(sum(p for option, p in probabilities.items() if option not in nones))
        return json.dumps(probabilities, sort_keys=True), treated
