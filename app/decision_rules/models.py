"""The decision log, SMART track assignments and onboarding (PAI) personalization results."""

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base, JSONType
from app.core.models import IdMixin


class Decision(IdMixin, Base):
    """One decision point of one participant, available or not: the MRT analysis row.

    The notification it created, its delivery status and engagement are found through
    ``notifications.decision_id`` (and ``engagement_events.notification_id``); proximal
    outcomes are computed when read (``app.decision_rules.outcomes``).
    """

    __tablename__ = "decisions"
    __table_args__ = (sa.Index("ix_decisions_participant_decided", "participant_id", "decided_at"),)

    participant_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("participants.id", ondelete="CASCADE")
    )
    study_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("studies.id", ondelete="CASCADE"))
    # The scheduled decision point decided; unique, so one item never gets two decisions.
    scheduled_item_id: Mapped[uuid.UUID | None] = mapped_column(
        sa.ForeignKey("scheduled_items.id", ondelete="SET NULL"), unique=True
    )
    decision_point_id: Mapped[str] = mapped_column(sa.String(64))
    # The MRT decision index (scheduled_items.sequence).
    decision_index: Mapped[int | None]
    planned_at: Mapped[datetime]
    decided_at: Mapped[datetime]
    # The participant's wall-clock time at the decision, ISO 8601 with offset.
    local_time: Mapped[str] = mapped_column(sa.String(40))
    timezone: Mapped[str] = mapped_column(sa.String(64))
    protocol_version: Mapped[int | None]
    study_day: Mapped[int | None]
    stage: Mapped[str | None] = mapped_column(sa.String(64))
    track: Mapped[str | None] = mapped_column(sa.String(64))
    # The participant's treatment phase (stepped care) then (None without phases).
    phase: Mapped[str | None] = mapped_column(sa.String(64))
    available: Mapped[bool]
    unavailable_reason: Mapped[str | None] = mapped_column(sa.Text)
    # Tailoring variable values as the rules saw them (defaults applied; null = no data).
    tailoring: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    # Names of the variables that had no data and took their protocol default.
    tailoring_defaulted: Mapped[list[str]] = mapped_column(JSONType, default=list)
    pai_recommendation: Mapped[str | None] = mapped_column(sa.String(64))
    rule_id: Mapped[str | None] = mapped_column(sa.String(64))
    # The rule's (or fallback's) probabilities as written in the protocol.
    declared_probabilities: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    # Option id -> why it got probability 0 (contraindicated, not on the track, not preferred).
    excluded: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    # The probabilities the draw used: after exclusions, weights, renormalization, bounds.
    probabilities: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    randomized: Mapped[bool] = mapped_column(default=False)
    seed: Mapped[int | None] = mapped_column(sa.BigInteger)
    draw: Mapped[float | None]
    option_id: Mapped[str | None] = mapped_column(sa.String(64))
    # Probability of the chosen option (the MRT analysis's randomization probability).
    probability: Mapped[float | None]
    # Something noteworthy that is neither unavailability nor an error ("no rule matched").
    note: Mapped[str | None] = mapped_column(sa.Text)
    fallback: Mapped[bool] = mapped_column(default=False)
    error: Mapped[str | None] = mapped_column(sa.Text)
    # What a learning policy did (null for rule-table decisions): the posterior id, the
    # features, the effect's posterior mean and variance, P(treat) before and after its
    # clipping, and whether it fell back with the reason (docs/learning-policies.md).
    learning: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    # What the dose constraint did (null where it does not apply): the day's target, the
    # interventions delivered so far, the decision points left and their expected
    # availability, P(treat) before and after the bounds (docs/learning-policies.md).
    dose: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    # The burden factor in force (1: none; the fatigue response's prompt_budget_factor while
    # a fatigue episode is open). Null for decisions logged before revision 0014.
    burden_factor: Mapped[float | None]
    created_at: Mapped[datetime]


class PolicyPosterior(IdMixin, Base):
    """One stored posterior of a study's learning policy under one protocol version.

    Immutable: each update writes a new row, the previous one updated with the decisions
    new since (``inputs``: their ids and the outcome values used), so every posterior can be
    recomputed from the prior and the exported decisions.
    """

    __tablename__ = "policy_posteriors"
    __table_args__ = (
        # One update per due time: a second worker doing the same update fails on insert.
        sa.UniqueConstraint("study_id", "protocol_version", "scheduled_for"),
    )

    study_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("studies.id", ondelete="CASCADE"))
    protocol_version: Mapped[int]
    previous_id: Mapped[uuid.UUID | None]
    # The update's due time (the cadence's local time, in UTC) and when it ran.
    scheduled_for: Mapped[datetime]
    computed_at: Mapped[datetime]
    # The decided_at range of the new rows: after inputs_from (none: from the start), up to
    # and including inputs_to.
    inputs_from: Mapped[datetime | None]
    inputs_to: Mapped[datetime]
    rows_used: Mapped[int]
    rows_total: Mapped[int]
    noise_variance: Mapped[float]
    # Coefficients (baseline intercept and features, then effect intercept and features).
    mean: Mapped[list[Any]] = mapped_column(JSONType)
    covariance: Mapped[list[Any]] = mapped_column(JSONType)
    # [[decision id, outcome], ...] in the order used.
    inputs: Mapped[list[Any]] = mapped_column(JSONType)
    # With random effects: {participant id: {"ztz", "zty", "rows"}}, each participant's
    # cumulative sufficient statistics over the chain of updates (mean and covariance are
    # then the pooled coefficients'; see app/decision_rules/shrinkage.py). Null: pooled.
    participants: Mapped[dict[str, Any] | None] = mapped_column(JSONType)


class SmartAssignment(IdMixin, Base):
    """A participant's track for one SMART stage: the initial assignment, or the
    re-randomization by response at the end of the previous stage."""

    __tablename__ = "smart_assignments"
    __table_args__ = (sa.UniqueConstraint("participant_id", "stage_id"),)

    participant_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("participants.id", ondelete="CASCADE")
    )
    study_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("studies.id", ondelete="CASCADE"))
    protocol_version: Mapped[int]
    # The stage this assignment is for, and the stage whose end was evaluated (None for
    # the initial assignment).
    stage_id: Mapped[str] = mapped_column(sa.String(64))
    previous_stage_id: Mapped[str | None] = mapped_column(sa.String(64))
    previous_track: Mapped[str | None] = mapped_column(sa.String(64))
    responder: Mapped[bool | None]
    # Why the responder criterion could not be evaluated (then: non-responder).
    responder_error: Mapped[str | None] = mapped_column(sa.Text)
    # The values the criterion saw.
    tailoring: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    probabilities: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    seed: Mapped[int] = mapped_column(sa.BigInteger)
    draw: Mapped[float]
    track: Mapped[str] = mapped_column(sa.String(64))
    # The decision during which the assignment was made.
    decision_id: Mapped[uuid.UUID | None]
    assigned_at: Mapped[datetime]


class PaiScore(IdMixin, Base):
    """Onboarding personalization: the Personalized Advantage Index of one participant.

    A new row each time the attributes are set; the engine uses the latest one for the
    participant's protocol version.
    """

    __tablename__ = "pai_scores"
    __table_args__ = (
        sa.Index("ix_pai_scores_participant_computed", "participant_id", "computed_at"),
    )

    participant_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("participants.id", ondelete="CASCADE")
    )
    protocol_version: Mapped[int]
    outcome: Mapped[str] = mapped_column(sa.Text)
    # Option id -> predicted outcome under that treatment.
    scores: Mapped[dict[str, Any]] = mapped_column(JSONType)
    recommendation: Mapped[str] = mapped_column(sa.String(64))
    # created, attributes_updated, enrolled, first_decision
    reason: Mapped[str] = mapped_column(sa.String(40))
    computed_at: Mapped[datetime]
