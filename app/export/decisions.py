"""The decisions dataset: the MRT long format, one row per decision point.

Decisions are read a page at a time (keyset on id) and joined in batch with their
notification, delivery status, engagement and proximal outcomes, so memory and the number
of queries per row stay bounded.
"""

import json
import uuid
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, defer

from app.decision_rules.history import records
from app.decision_rules.models import Decision
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
from app.export.protocols import covered_versions
from app.participants.models import Participant
from app.protocols.document import Protocol
from app.protocols.interventions import Category
from app.protocols.versions import load_protocol
from app.studies.models import Study

PAGE = 2_000
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


def _page(
    session: Session, study: Study, filters: Filters, after: uuid.UUID | None
) -> list[tuple[Decision, str]]:
    stmt = (
        sa.select(Decision, Participant.code)
        # Not exported: skip decoding their JSON (a large share of the export's time).
        .options(
            defer(Decision.declared_probabilities),
            defer(Decision.excluded),
            defer(Decision.tailoring_defaulted),
        )
        .join(Participant, Participant.id == Decision.participant_id)
        .where(Decision.study_id == study.id)
        .order_by(Decision.id)
        .limit(PAGE)
    )
    if after is not None:
        stmt = stmt.where(Decision.id > after)
    if filters.participant_ids:
        stmt = stmt.where(Decision.participant_id.in_(filters.participant_ids))
    if filters.start is not None:
        stmt = stmt.where(Decision.decided_at >= filters.start)
    if filters.end is not None:
        stmt = stmt.where(Decision.decided_at < filters.end)
    if filters.protocol_version is not None:
        stmt = stmt.where(Decision.protocol_version == filters.protocol_version)
    return [(decision, code) for decision, code in session.execute(stmt)]


def decision_rows(
    session: Session, study: Study, filters: Filters, columns: list[Column], now: datetime
) -> Iterator[Row]:
    none_options = {
        version: {o.id for o in p.intervention_options if o.category == Category.none}
        for version, p in _protocols(session, study, filters).items()
    }
    names = [c.name for c in columns[len(FIXED_COLUMNS) :]]
    after = None
    while page := _page(session, study, filters, after):
        codes = {decision.id: code for decision, code in page}
        for record in records(session, [d for d, _ in page], now=now):
            d = record.decision
            nones = none_options.get(d.protocol_version or 0, set())
            kinds = {e.kind for e in record.engagement}
            extra = {
                **{TAILORING_PREFIX + k: v for k, v in d.tailoring.items()},
                **{OUTCOME_PREFIX + k: _number(v) for k, v in record.outcomes.items()},
            }
            sent = record.notification_id is not None
            yield (
                d.id,
                d.participant_id,
                codes[d.id],
                d.decision_index,
                d.decision_point_id,
                d.planned_at,
                d.decided_at,
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
                json.dumps(d.probabilities, sort_keys=True),
                _p_treated(d, nones),
                d.seed,
                d.draw,
                d.option_id,
                int(d.option_id is not None and d.option_id not in nones),
                d.probability,
                d.fallback,
                d.error,
                d.note,
                d.pai_recommendation,
                record.notification_id,
                record.delivery_status,
                record.sent_at,
                "prompt_opened" in kinds if sent else None,
                "exercise_completed" in kinds if sent else None,
                *(extra.get(name) for name in names),
            )
        after = page[-1][0].id
        session.expunge_all()  # this page is written: keep memory flat


def _p_treated(decision: Decision, nones: set[str]) -> float | None:
    """The MRT's randomization probability: P(a prompt of any kind is delivered)."""
    if not decision.available or not decision.probabilities:
        return None
    return float(sum(p for option, p in decision.probabilities.items() if option not in nones))


def _number(value: Any) -> Any:
    return float(value) if isinstance(value, bool) else value
