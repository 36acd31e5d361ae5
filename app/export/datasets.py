"""The exportable datasets: their columns and their rows, streamed from the database.

Rows are read with ``yield_per`` (a server-side cursor on PostgreSQL), so memory stays
bounded whatever the size of the study.
"""

import json
import math
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import InstrumentedAttribute, Session

from app.alerts.models import Alert
from app.audit.models import AuditEvent
from app.care.inertia import follow_ups
from app.care.models import PLAN_CHANGES, Review
from app.care.reviews import status_of
from app.decision_rules.models import SmartAssignment
from app.ema.models import EmaAnswer, EmaResponse
from app.engagement.models import EngagementEvent
from app.export.columns import (
    Column,
    Filters,
    Row,
    boolean,
    integer,
    json_text,
    number,
    string,
    timestamp,
)
from app.export.decisions import decision_columns, decision_rows
from app.export.protocols import covered_versions
from app.monitoring.models import CareFlag
from app.notifications.models import Notification
from app.participants.models import Participant
from app.protocols.store import load_protocol
from app.sensing.models import WearableSummary
from app.studies.models import Study

STREAM_BATCH = 5_000

AnySelect = sa.Select[*tuple[Any, ...]]


@dataclass(frozen=True)
class Dataset:
    name: str
    description: str
    columns: Callable[[Session, Study, Filters], list[Column]]
    # (session, study, filters, columns, now): now is the export time, from the clock.
    rows: Callable[[Session, Study, Filters, list[Column], datetime], Iterator[Row]]


def _participant_columns() -> list[Column]:
    return [
        string("participant_id", "Kairos participant id (UUID)."),
        string("participant_code", "The study's pseudonymous participant code."),
    ]


def _filtered(
    stmt: AnySelect,
    study: Study,
    filters: Filters,
    *,
    participant_id: InstrumentedAttribute[uuid.UUID],
    time: InstrumentedAttribute[Any] | None,
    protocol_version: InstrumentedAttribute[Any] | None = None,
) -> AnySelect:
    stmt = stmt.where(Participant.study_id == study.id)
    if filters.participant_ids:
        stmt = stmt.where(participant_id.in_(filters.participant_ids))
    if time is not None and filters.start is not None:
        stmt = stmt.where(time >= filters.start)
    if time is not None and filters.end is not None:
        stmt = stmt.where(time < filters.end)
    if filters.protocol_version is not None:
        # Records without their own version are filtered by the participant's version.
        version = protocol_version if protocol_version is not None else Participant.protocol_version
        stmt = stmt.where(version == filters.protocol_version)
    return stmt


def _stream(session: Session, stmt: AnySelect) -> Iterator[Row]:
    yield from session.execute(stmt.execution_options(yield_per=STREAM_BATCH))


def _static(columns: list[Column]) -> Callable[[Session, Study, Filters], list[Column]]:
    return lambda _session, _study, _filters: columns


# participants ------------------------------------------------------------------------------

PARTICIPANT_COLUMNS = [
    *_participant_columns(),
    string("timezone", "IANA time zone of the participant's schedule."),
    string("status", "invited, active, paused, withdrawn or completed."),
    string("status_reason", "Why the status last changed, as recorded by staff."),
    timestamp("status_changed_at", "When the status last changed."),
    timestamp("enrolled_at", "When the app was enrolled (empty while invited)."),
    integer("protocol_version", "The protocol version the participant follows."),
    json_text("attributes", "Onboarding attributes (preferences, flags, phenotype) as JSON."),
    timestamp("created_at", "When the participant record was created."),
    json_text(
        "smart_assignments",
        "SMART: per stage, in order, the track assigned, the responder status evaluated at "
        "the end of the previous stage, and the probability of the track received (JSON).",
    ),
    number(
        "smart_weight",
        "SMART inverse-probability weight: 1 / the product of the probabilities of the tracks "
        "received (for the weighted-and-replicated analysis of embedded adaptive "
        "interventions; every stage here re-randomizes, so no replication is needed).",
    ),
]

_PARTICIPANT_PAGE = 2_000


def _participant_rows(
    session: Session, study: Study, filters: Filters, _columns: list[Column], _now: datetime
) -> Iterator[Row]:
    base = _filtered(
        sa.select(
            Participant.id,
            Participant.code,
            Participant.timezone,
            Participant.status,
            Participant.status_reason,
            Participant.status_changed_at,
            Participant.enrolled_at,
            Participant.protocol_version,
            Participant.attributes,
            Participant.created_at,
        )
        .order_by(Participant.id)
        .limit(_PARTICIPANT_PAGE),
        study,
        filters,
        participant_id=Participant.id,
        time=Participant.created_at,
    )
    for rows in _pages(session, base, Participant.id):
        smart = _smart(session, [row[0] for row in rows])
        for row in rows:
            stages, weight = smart.get(row[0], ([], None))
            yield (*row, json.dumps(stages) if stages else None, weight)


def _pages(
    session: Session, first: AnySelect, id_column: InstrumentedAttribute[uuid.UUID]
) -> Iterator[Sequence[Row]]:
    """The rows of ``first`` (ordered by ``id_column``, its first column, with a limit) a
    page at a time, keyset on the id: for rows that need one more query per page."""
    after: uuid.UUID | None = None
    while rows := session.execute(first if after is None else first.where(id_column > after)).all():
        yield rows
        after = rows[-1][0]


def _smart(
    session: Session, participant_ids: list[uuid.UUID]
) -> dict[uuid.UUID, tuple[list[dict[str, Any]], float | None]]:
    """Each participant's SMART assignments in stage order and their IPW weight."""
    assignments: dict[uuid.UUID, list[SmartAssignment]] = {}
    for row in session.scalars(
        sa.select(SmartAssignment)
        .where(SmartAssignment.participant_id.in_(participant_ids))
        .order_by(SmartAssignment.participant_id, SmartAssignment.assigned_at)
    ):
        assignments.setdefault(row.participant_id, []).append(row)
    result: dict[uuid.UUID, tuple[list[dict[str, Any]], float | None]] = {}
    for pid, rows in assignments.items():
        probabilities = [float(row.probabilities.get(row.track) or 0.0) for row in rows]
        stages = [
            {
                "stage": row.stage_id,
                "track": row.track,
                "responder": row.responder,
                "probability": probability,
            }
            for row, probability in zip(rows, probabilities, strict=True)
        ]
        product = math.prod(probabilities)
        result[pid] = (stages, 1.0 / product if product > 0 else None)
    return result


# EMA, long: one row per answer -------------------------------------------------------------

_RESPONSE_COLUMNS = [
    string("response_id", "Kairos id of the submitted questionnaire."),
    *_participant_columns(),
    string("questionnaire_id", "Questionnaire id in the protocol."),
    integer("questionnaire_version", "Questionnaire version answered."),
    integer("protocol_version", "Protocol version the response was validated against."),
    string("prompt_id", "The scheduled EMA prompt answered; empty if self-initiated."),
    timestamp("answered_at", "When the participant answered (device clock, in UTC)."),
    integer("utc_offset_minutes", "The device's UTC offset when answering.", "min"),
    timestamp("received_at", "When Kairos received it (offline answers sync later)."),
    boolean("late", "Answered after the prompt expired."),
]

EMA_LONG_COLUMNS = [
    *_RESPONSE_COLUMNS,
    string("item_id", "Item id within the questionnaire."),
    json_text("value", "The answer as given (number, text, choice, list of choices, boolean)."),
    number("numeric_value", "Numeric ratings, durations in minutes and yes/no as 1/0."),
]


def _response_fields() -> tuple[Any, ...]:
    return (
        EmaResponse.id,
        Participant.id,
        Participant.code,
        EmaResponse.questionnaire_id,
        EmaResponse.questionnaire_version,
        EmaResponse.protocol_version,
        EmaResponse.prompt_id,
        EmaResponse.answered_at,
        EmaResponse.utc_offset_minutes,
        EmaResponse.received_at,
        EmaResponse.late,
    )


def _answers_stmt(study: Study, filters: Filters) -> AnySelect:
    stmt = (
        sa.select(*_response_fields(), EmaAnswer.item_id, EmaAnswer.value, EmaAnswer.numeric_value)
        .join(EmaAnswer, EmaAnswer.response_id == EmaResponse.id)
        .join(Participant, Participant.id == EmaResponse.participant_id)
        .order_by(EmaResponse.id, EmaAnswer.item_id)
    )
    return _filtered(
        stmt,
        study,
        filters,
        participant_id=EmaResponse.participant_id,
        time=EmaResponse.answered_at,
        protocol_version=EmaResponse.protocol_version,
    )


def _ema_long_rows(
    session: Session, study: Study, filters: Filters, _columns: list[Column], _now: datetime
) -> Iterator[Row]:
    for row in _stream(session, _answers_stmt(study, filters)):
        *head, value, numeric = row
        yield (*head, json.dumps(value), numeric)


# EMA, wide: one row per response, a column per questionnaire item --------------------------


def _item_columns(session: Session, study: Study, filters: Filters) -> list[Column]:
    """One column per "<questionnaire>.<item>" in the study's protocol versions."""
    columns: dict[str, Column] = {}
    for row in covered_versions(session, study, filters):
        for questionnaire in load_protocol(row).questionnaires:
            for item in questionnaire.items:
                name = f"{questionnaire.id}.{item.id}"
                columns.setdefault(
                    name,
                    json_text(name, f"{item.type}: {item.text}")
                    if item.type in ("multiple_choice", "free_text", "single_choice")
                    else number(name, f"{item.type}: {item.text}", _item_unit(item.type)),
                )
            for score in questionnaire.scores:
                name = f"{questionnaire.id}.{score.id}"
                items = ", ".join(score.items)
                about = f"score, {score.method} of {items}"
                if score.reverse:
                    about += f" ({', '.join(score.reverse)} reversed)"
                if score.min_answered is not None:
                    about += f", prorated from {score.min_answered} answered"
                columns.setdefault(name, number(name, f"{about}: {score.description}".rstrip(": ")))
    return list(columns.values())


def _item_unit(item_type: str) -> str | None:
    return {"duration": "min", "yes_no": "1 = yes, 0 = no"}.get(item_type)


def _ema_wide_columns(session: Session, study: Study, filters: Filters) -> list[Column]:
    return [*_RESPONSE_COLUMNS, *_item_columns(session, study, filters)]


def _ema_wide_rows(
    session: Session, study: Study, filters: Filters, columns: list[Column], _now: datetime
) -> Iterator[Row]:
    item_index = {c.name: i for i, c in enumerate(columns[len(_RESPONSE_COLUMNS) :])}
    width = len(item_index)
    current: list[Any] | None = None
    values: list[Any] = []
    # Answers arrive ordered by response, so one response is assembled at a time.
    for row in _stream(session, _answers_stmt(study, filters)):
        head = list(row[: len(_RESPONSE_COLUMNS)])
        item_id, value, numeric = row[len(_RESPONSE_COLUMNS) :]
        if current is None or current[0] != head[0]:
            if current is not None:
                yield (*current, *values)
            current, values = head, [None] * width
        index = item_index.get(f"{head[3]}.{item_id}")
        if index is not None:
            values[index] = numeric if numeric is not None else _text(value)
    if current is not None:
        yield (*current, *values)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


# wearable summaries ------------------------------------------------------------------------

WEARABLE_COLUMNS = [
    string("summary_id", "Kairos id of the summary."),
    *_participant_columns(),
    string("metric", "steps, active_minutes, sleep_minutes, sleep_efficiency, resting_heart_rate."),
    string("unit", "Unit of value after normalization (count, min, percent, bpm)."),
    timestamp("start_at", "Start of the summarized period."),
    timestamp("end_at", "End of the summarized period."),
    number("value", "The summarized value, in unit."),
    string("source_format", "kairos, or omh for Open mHealth (IEEE 1752.1) payloads."),
    timestamp("received_at", "When Kairos first received the period."),
    timestamp("updated_at", "When a re-sync last replaced the value."),
]


def _wearable_rows(
    session: Session, study: Study, filters: Filters, _columns: list[Column], _now: datetime
) -> Iterator[Row]:
    stmt = _filtered(
        sa.select(
            WearableSummary.id,
            Participant.id,
            Participant.code,
            WearableSummary.metric,
            WearableSummary.unit,
            WearableSummary.start_at,
            WearableSummary.end_at,
            WearableSummary.value,
            WearableSummary.source_format,
            WearableSummary.received_at,
            WearableSummary.updated_at,
        )
        .join(Participant, Participant.id == WearableSummary.participant_id)
        .order_by(WearableSummary.id),
        study,
        filters,
        participant_id=WearableSummary.participant_id,
        time=WearableSummary.start_at,
    )
    yield from _stream(session, stmt)


# notifications -----------------------------------------------------------------------------

NOTIFICATION_COLUMNS = [
    string("notification_id", "Stable id, echoed back by the app in engagement events."),
    *_participant_columns(),
    string("kind", "ema_prompt, reminder or intervention."),
    string("scheduled_item_id", "The scheduled EMA prompt or decision point that created it."),
    string("decision_id", "For interventions: the decision-log row."),
    string("option_id", "For interventions: the intervention option delivered."),
    string("title", "The push title as sent."),
    timestamp("created_at", "When it entered the outbox."),
    timestamp("send_at", "When it was due to be sent."),
    timestamp("expires_at", "When it stopped being relevant."),
    string("status", "pending, sending, sent, failed, expired or cancelled."),
    string("status_reason", "Why it failed, expired or was cancelled."),
    timestamp("sent_at", "When the push provider accepted it."),
    integer("attempts", "Delivery attempts made."),
]


def _notification_rows(
    session: Session, study: Study, filters: Filters, _columns: list[Column], _now: datetime
) -> Iterator[Row]:
    stmt = _filtered(
        sa.select(
            Notification.id,
            Participant.id,
            Participant.code,
            Notification.kind,
            Notification.scheduled_item_id,
            Notification.decision_id,
            Notification.option_id,
            Notification.title,
            Notification.created_at,
            Notification.send_at,
            Notification.expires_at,
            Notification.status,
            Notification.status_reason,
            Notification.sent_at,
            Notification.attempts,
        )
        .join(Participant, Participant.id == Notification.participant_id)
        .order_by(Notification.id),
        study,
        filters,
        participant_id=Notification.participant_id,
        time=Notification.created_at,
    )
    yield from _stream(session, stmt)


# engagement events -------------------------------------------------------------------------

ENGAGEMENT_COLUMNS = [
    string("event_id", "Kairos id of the event."),
    *_participant_columns(),
    string(
        "kind",
        "prompt_received, prompt_opened, prompt_dismissed, exercise_started, "
        "exercise_completed or helpfulness_rated.",
    ),
    string("notification_id", "The notification the event refers to."),
    string("prompt_id", "The scheduled EMA prompt the event refers to."),
    string("exercise_id", "The exercise started or completed."),
    timestamp("occurred_at", "When it happened on the phone (UTC)."),
    timestamp("received_at", "When Kairos received it."),
    number("duration_seconds", "Exercise duration, for exercise_completed.", "s"),
    integer("rating", "Helpfulness rating, for helpfulness_rated."),
]


def _engagement_rows(
    session: Session, study: Study, filters: Filters, _columns: list[Column], _now: datetime
) -> Iterator[Row]:
    stmt = _filtered(
        sa.select(
            EngagementEvent.id,
            Participant.id,
            Participant.code,
            EngagementEvent.kind,
            EngagementEvent.notification_id,
            EngagementEvent.prompt_id,
            EngagementEvent.exercise_id,
            EngagementEvent.occurred_at,
            EngagementEvent.received_at,
            EngagementEvent.duration_seconds,
            EngagementEvent.rating,
        )
        .join(Participant, Participant.id == EngagementEvent.participant_id)
        .order_by(EngagementEvent.id),
        study,
        filters,
        participant_id=EngagementEvent.participant_id,
        time=EngagementEvent.occurred_at,
    )
    yield from _stream(session, stmt)


# alerts ------------------------------------------------------------------------------------

ALERT_COLUMNS = [
    string("alert_id", "Kairos id of the alert."),
    *_participant_columns(),
    string("questionnaire_id", "The questionnaire whose answer raised it."),
    string("item_id", "The escalation item."),
    string("severity", "The protocol's severity (e.g. high, critical)."),
    string("message", "The protocol's message for the care team."),
    json_text("value", "The answer that raised it (JSON)."),
    timestamp("answered_at", "When the participant answered."),
    timestamp("created_at", "When Kairos raised the alert."),
    timestamp("acknowledged_at", "When the care team acknowledged it."),
    string("acknowledged_by", "Who acknowledged it."),
    string("acknowledgement_note", "What the care team did."),
    string("webhook_status", "Delivery of the alert webhook."),
    timestamp("webhook_delivered_at", "When the webhook receiver accepted it."),
]


def _alert_rows(
    session: Session, study: Study, filters: Filters, _columns: list[Column], _now: datetime
) -> Iterator[Row]:
    stmt = _filtered(
        sa.select(
            Alert.id,
            Participant.id,
            Participant.code,
            Alert.questionnaire_id,
            Alert.item_id,
            Alert.severity,
            Alert.message,
            Alert.value,
            Alert.answered_at,
            Alert.created_at,
            Alert.acknowledged_at,
            Alert.acknowledged_by,
            Alert.acknowledgement_note,
            Alert.webhook_status,
            Alert.webhook_delivered_at,
        )
        .join(Participant, Participant.id == Alert.participant_id)
        .order_by(Alert.id),
        study,
        filters,
        participant_id=Alert.participant_id,
        time=Alert.created_at,
    )
    for row in _stream(session, stmt):
        yield (*row[:7], json.dumps(row[7]), *row[8:])


# care flags and reviews ------------------------------------------------------------------

FLAG_COLUMNS = [
    string("flag_id", "Kairos id of the care-team flag."),
    *_participant_columns(),
    string("kind", "non_response, fatigue or unreachable."),
    json_text("detail", "The figures that raised the flag (JSON)."),
    timestamp("raised_at", "When the daily evaluation raised it."),
    timestamp("acknowledged_at", "When the care team acknowledged it."),
    string("acknowledged_by", "Who acknowledged it."),
    string("note", "The acknowledgement note."),
    timestamp("resolved_at", "When the evaluation found its condition gone."),
    timestamp(
        "first_review_at",
        "Non-response flags: the first review of the participant completed after the flag.",
    ),
    number("hours_to_review", "Non-response flags: raised_at to first_review_at.", "h"),
    timestamp(
        "plan_change_at",
        "Non-response flags: the first plan change after the flag (a review outcome other "
        "than maintain, or a treatment phase change).",
    ),
    number("days_to_plan_change", "Non-response flags: raised_at to plan_change_at.", "d"),
    integer(
        "plan_change_within_days",
        "Non-response flags: N of the inertia measure (the protocol's "
        "reviews.plan_change_within_days).",
        "d",
    ),
    boolean(
        "plan_changed_in_time",
        "Non-response flags: the plan changed within N days of the flag; empty while the N "
        "days have not passed and it has not changed (therapeutic inertia when false).",
    ),
]


def _flag_rows(
    session: Session, study: Study, filters: Filters, _columns: list[Column], now: datetime
) -> Iterator[Row]:
    stmt = _filtered(
        sa.select(
            CareFlag.id,
            Participant.id,
            Participant.code,
            CareFlag.kind,
            CareFlag.detail,
            CareFlag.raised_at,
            CareFlag.acknowledged_at,
            CareFlag.acknowledged_by,
            CareFlag.note,
            CareFlag.resolved_at,
        )
        .join(Participant, Participant.id == CareFlag.participant_id)
        .order_by(CareFlag.id)
        .limit(_PARTICIPANT_PAGE),
        study,
        filters,
        participant_id=CareFlag.participant_id,
        time=CareFlag.raised_at,
    )
    for rows in _pages(session, stmt, CareFlag.id):
        follow = {
            f.flag_id: f for f in follow_ups(session, study, now, flag_ids=[r[0] for r in rows])
        }
        for row in rows:
            f = follow.get(row[0])
            yield (
                *row[:4],
                json.dumps(row[4]),
                *row[5:],
                *(
                    (
                        f.first_review_at,
                        f.hours_to_review,
                        f.plan_change_at,
                        f.days_to_plan_change,
                        f.within_days,
                        f.changed_in_time,
                    )
                    if f is not None
                    else (None,) * 6
                ),
            )


REVIEW_COLUMNS = [
    string("review_id", "Kairos id of the care-team review."),
    *_participant_columns(),
    string("trigger", "cadence (the protocol's reviews.every_days) or flag."),
    string("flag_id", "The flag that made it due (trigger flag)."),
    integer("protocol_version", "The participant's protocol version when it fell due."),
    string("status", "upcoming, due, overdue or completed, at the export time."),
    timestamp("due_at", "When it fell due."),
    timestamp("overdue_at", "due_at plus the protocol's grace_days."),
    timestamp("notified_at", "When it was sent to the study's care routes."),
    timestamp("escalated_at", "When it was escalated as overdue."),
    timestamp("completed_at", "When a clinician completed it."),
    string("completed_by", "Who completed it."),
    string("outcome", "escalate, change_phase, step_down, maintain or refer."),
    boolean("plan_change", "The outcome changes the plan (anything but maintain)."),
    string("reason", "Why (required for maintain while a non-response flag was open)."),
    string("note", "The clinician's note."),
    string("new_phase", "The treatment phase the outcome moved the participant to."),
    string(
        "open_non_response_flag_id",
        "The non-response flag open when the review was completed, if any.",
    ),
    number("hours_due_to_completed", "due_at to completed_at.", "h"),
]


def _review_rows(
    session: Session, study: Study, filters: Filters, _columns: list[Column], now: datetime
) -> Iterator[Row]:
    stmt = _filtered(
        sa.select(Review, Participant.code)
        .join(Participant, Participant.id == Review.participant_id)
        .order_by(Review.id),
        study,
        filters,
        participant_id=Review.participant_id,
        time=Review.due_at,
        protocol_version=Review.protocol_version,
    )
    for review, code in _stream(session, stmt):
        done = review.completed_at
        yield (
            review.id,
            review.participant_id,
            code,
            review.trigger,
            review.flag_id,
            review.protocol_version,
            status_of(review, now),
            review.due_at,
            review.overdue_at,
            review.notified_at,
            review.escalated_at,
            done,
            review.completed_by,
            review.outcome,
            review.outcome in PLAN_CHANGES if review.outcome else None,
            review.reason,
            review.note,
            review.new_phase,
            review.open_non_response_flag_id,
            (done - review.due_at).total_seconds() / 3600 if done else None,
        )


# audit log ---------------------------------------------------------------------------------

AUDIT_COLUMNS = [
    string("event_id", "Kairos id of the audit event."),
    timestamp("occurred_at", "When the action happened."),
    string("actor", "staff:<API key id>, cli, system or participant:<id>."),
    string("actor_role", "admin, coordinator or researcher for staff."),
    string("action", "What was done, e.g. participant.create, export.decisions."),
    string("resource_type", "The kind of record acted on."),
    string("resource_id", "The record acted on."),
    json_text("detail", "What changed or was read, as JSON."),
]


def _audit_rows(
    session: Session, study: Study, filters: Filters, _columns: list[Column], _now: datetime
) -> Iterator[Row]:
    stmt = sa.select(
        AuditEvent.id,
        AuditEvent.occurred_at,
        AuditEvent.actor,
        AuditEvent.actor_role,
        AuditEvent.action,
        AuditEvent.resource_type,
        AuditEvent.resource_id,
        AuditEvent.detail,
    ).where(AuditEvent.study_id == study.id)
    if filters.start is not None:
        stmt = stmt.where(AuditEvent.occurred_at >= filters.start)
    if filters.end is not None:
        stmt = stmt.where(AuditEvent.occurred_at < filters.end)
    if filters.participant_ids:
        stmt = stmt.where(AuditEvent.resource_id.in_([str(p) for p in filters.participant_ids]))
    for *head, detail in _stream(session, stmt.order_by(AuditEvent.id)):
        yield (*head, json.dumps(detail))


DATASETS: dict[str, Dataset] = {
    d.name: d
    for d in (
        Dataset(
            "decisions",
            "The MRT long format: one row per decision point, available or not, with "
            "probabilities, action, seed, tailoring variables (tv_*), delivery, engagement and "
            "proximal outcomes (outcome_*).",
            decision_columns,
            decision_rows,
        ),
        Dataset(
            "participants",
            "One row per participant (pseudonymous): status, enrollment, protocol version, "
            "onboarding attributes.",
            _static(PARTICIPANT_COLUMNS),
            _participant_rows,
        ),
        Dataset(
            "ema_answers",
            "EMA in long format: one row per item answer.",
            _static(EMA_LONG_COLUMNS),
            _ema_long_rows,
        ),
        Dataset(
            "ema_responses",
            "EMA in wide format: one row per submitted questionnaire, one column per item "
            "(named <questionnaire>.<item>).",
            _ema_wide_columns,
            _ema_wide_rows,
        ),
        Dataset(
            "wearable_summaries",
            "Wearable summaries: one row per participant, metric and period.",
            _static(WEARABLE_COLUMNS),
            _wearable_rows,
        ),
        Dataset(
            "notifications",
            "Every push notification with its delivery outcome.",
            _static(NOTIFICATION_COLUMNS),
            _notification_rows,
        ),
        Dataset(
            "engagement_events",
            "What participants did with prompts and exercises.",
            _static(ENGAGEMENT_COLUMNS),
            _engagement_rows,
        ),
        Dataset(
            "alerts",
            "Escalation alerts raised by EMA answers, with acknowledgement and webhook delivery.",
            _static(ALERT_COLUMNS),
            _alert_rows,
        ),
        Dataset(
            "flags",
            "Care-team flags (non-response, fatigue, unreachable) with acknowledgement and "
            "resolution, and for non-response flags the inertia measures: time to the first "
            "review and whether the plan changed within N days.",
            _static(FLAG_COLUMNS),
            _flag_rows,
        ),
        Dataset(
            "reviews",
            "Care-team reviews: why and when each fell due, was sent, escalated and "
            "completed, with its structured outcome, reason and phase change.",
            _static(REVIEW_COLUMNS),
            _review_rows,
        ),
        Dataset(
            "audit_log",
            "Staff actions and staff reads of participant data in this study.",
            _static(AUDIT_COLUMNS),
            _audit_rows,
        ),
    )
}
