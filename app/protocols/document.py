"""The study protocol document: the top-level model and the study section.

A `Protocol` built with `Protocol.model_validate` is only structurally valid; a new
document goes through `app.protocols.parse_protocol`, which also runs every semantic check.
Stored versions (checked when they were uploaded) are read with
`app.protocols.loading.load_stored`, which checks the structure only.
"""

from typing import Literal

from pydantic import Field

from app.protocols.attributes import (
    AttributeSpec,
    BooleanAttribute,
    ChoiceAttribute,
    MultiChoiceAttribute,
    NumberAttribute,
    TextAttribute,
)
from app.protocols.care import Adaptation, Phase, Phases, ReviewFlag, Reviews
from app.protocols.interventions import Category, InterventionOption
from app.protocols.monitoring import Monitoring
from app.protocols.outcomes import EmaOutcome, EngagementOutcome, ProximalOutcome, WearableOutcome
from app.protocols.personalization import (
    PaiModel,
    PaiTreatment,
    Personalization,
    PreferenceMode,
    Preferences,
)
from app.protocols.policy import (
    Assignment,
    Availability,
    Policy,
    ProbabilityBounds,
    Rule,
)
from app.protocols.primitives import CelName, LocalTime, ProtocolModel, Weekday
from app.protocols.questionnaires import (
    Choice,
    DurationItem,
    Escalation,
    FreeTextItem,
    Item,
    MultipleChoiceItem,
    NumericRatingItem,
    Questionnaire,
    Severity,
    SingleChoiceItem,
    YesNoItem,
)
from app.protocols.smart import NextStage, Smart, Stage, Track, TrackAssignment
from app.protocols.tailoring import (
    Aggregate,
    AttributeVariable,
    EmaVariable,
    EnrollmentVariable,
    NotificationsVariable,
    TailoringVariable,
    ValueType,
    WearableMetric,
    WearableVariable,
)
from app.protocols.timing import (
    DecisionPoint,
    EmaSchedule,
    Event,
    EventTrigger,
    QuietHours,
    ReminderPolicy,
    TimeWindow,
)

PROTOCOL_FORMAT_VERSION = 1


class Study(ProtocolModel):
    """The study as a whole."""

    name: str = Field(min_length=1, max_length=200)
    """Human-readable study name."""
    description: str = ""
    """What the study is about."""
    duration_days: int = Field(ge=1, le=3660)
    """Length of each participant's participation, from the enrollment day."""
    default_timezone: str = "UTC"
    """IANA time zone (e.g. "Europe/Berlin") for participants who do not report theirs."""
    random_seed: int = Field(ge=0, lt=2**63)
    """Study seed; each draw uses a generator seeded by (seed, participant, decision point)
    so every decision can be re-derived."""

    @property
    def last_day(self) -> int:
        """The last study day (0 is the enrollment day)."""
        return self.duration_days - 1


class Protocol(ProtocolModel):
    """A study protocol: everything the scheduler, the decision engine and data ingestion
    need to run a study."""

    kairos_protocol: Literal[1]
    """Version of this document format; always 1."""
    study: Study
    """Name, duration, default time zone and random seed."""
    participant_attributes: dict[CelName, AttributeSpec] = Field(default_factory=dict)
    """What onboarding records about each participant, by name (CEL: attributes.<name>)."""
    questionnaires: tuple[Questionnaire, ...] = Field(min_length=1)
    """The EMA questionnaires."""
    ema_schedules: tuple[EmaSchedule, ...] = ()
    """When questionnaires are prompted."""
    decision_points: tuple[DecisionPoint, ...] = Field(min_length=1)
    """When the policy decides."""
    tailoring_variables: tuple[TailoringVariable, ...] = ()
    """Named features the policy decides on."""
    intervention_options: tuple[InterventionOption, ...] = Field(min_length=1)
    """What a decision can deliver."""
    policy: Policy
    """Availability, burden limits, rules, probability bounds and fallback."""
    smart: Smart | None = None
    """Optional SMART stages and tracks."""
    personalization: Personalization = Personalization()
    """Optional preferences and PAI model."""
    proximal_outcomes: tuple[ProximalOutcome, ...] = ()
    """Short-term outcomes recorded for each decision."""
    monitoring: Monitoring = Monitoring()
    """Routine outcome monitoring: weekly trends and care-team flags."""
    adaptation: Adaptation | None = None
    """Which adaptive design the study uses: `smart` (randomized re-assignment only),
    `phases` (clinician-chosen treatment phases only) or `both`; without it, whatever
    the protocol declares."""
    phases: Phases | None = None
    """Optional treatment phases (stepped care) that clinicians move participants through."""
    reviews: Reviews | None = None
    """Optional care-team review cadence (due dates, escalation of overdue reviews)."""

    def option(self, option_id: str) -> InterventionOption:
        """The intervention option with this id; KeyError if there is none."""
        for option in self.intervention_options:
            if option.id == option_id:
                return option
        raise KeyError(option_id)

    def questionnaire(self, questionnaire_id: str) -> Questionnaire:
        """The questionnaire with this id; KeyError if there is none."""
        for questionnaire in self.questionnaires:
            if questionnaire.id == questionnaire_id:
                return questionnaire
        raise KeyError(questionnaire_id)

    def item(self, reference: str) -> Item:
        """The item named "<questionnaire>.<item>" (for "*.<item>", the first questionnaire's
        item with that id); KeyError if there is none."""
        matches = self.items(reference)
        if not matches:
            raise KeyError(reference)
        return matches[0][1]

    def items(self, reference: str) -> list[tuple[Questionnaire, Item]]:
        """Every (questionnaire, item) an item reference names: one, or for "*.<item>"
        each questionnaire's item with that id; empty if there is none."""
        questionnaire_id, _, item_id = reference.partition(".")
        return [
            (q, item)
            for q in self.questionnaires
            if questionnaire_id in ("*", q.id)
            for item in q.referable
            if item.id == item_id
        ]

    def variable(self, name: str) -> TailoringVariable:
        """The tailoring variable with this name; KeyError if there is none."""
        for variable in self.tailoring_variables:
            if variable.name == name:
                return variable
        raise KeyError(name)

    @property
    def decision_moments_per_day(self) -> int:
        """Scheduled decision moments on a day when every decision point is active."""
        return sum(point.moments_per_day for point in self.decision_points)

    def decision_point(self, decision_point_id: str) -> DecisionPoint:
        """The decision point with this id; KeyError if there is none."""
        for point in self.decision_points:
            if point.id == decision_point_id:
                return point
        raise KeyError(decision_point_id)

    def ema_schedule(self, schedule_id: str) -> EmaSchedule:
        """The EMA schedule with this id; KeyError if there is none."""
        for schedule in self.ema_schedules:
            if schedule.id == schedule_id:
                return schedule
        raise KeyError(schedule_id)

    def stage(self, stage_id: str) -> Stage:
        """The SMART stage with this id; KeyError if there is none (or no SMART design)."""
        for stage in self.smart.stages if self.smart else ():
            if stage.id == stage_id:
                return stage
        raise KeyError(stage_id)

    def stage_on_day(self, study_day: int) -> Stage | None:
        """The SMART stage a participant is in on a study day (None without SMART)."""
        if self.smart is None:
            return None
        start = 0
        for stage in self.smart.stages:
            if stage.duration_days is None or study_day < start + stage.duration_days:
                return stage
            start += stage.duration_days
        return self.smart.stages[-1]


__all__ = [
    "PROTOCOL_FORMAT_VERSION",
    "Adaptation",
    "Aggregate",
    "Assignment",
    "AttributeSpec",
    "AttributeVariable",
    "Availability",
    "BooleanAttribute",
    "Category",
    "Choice",
    "ChoiceAttribute",
    "DecisionPoint",
    "DurationItem",
    "EmaOutcome",
    "EmaSchedule",
    "EmaVariable",
    "EngagementOutcome",
    "EnrollmentVariable",
    "Escalation",
    "Event",
    "EventTrigger",
    "FreeTextItem",
    "InterventionOption",
    "Item",
    "LocalTime",
    "MultiChoiceAttribute",
    "MultipleChoiceItem",
    "NextStage",
    "NotificationsVariable",
    "NumberAttribute",
    "NumericRatingItem",
    "PaiModel",
    "PaiTreatment",
    "Personalization",
    "Phase",
    "Phases",
    "Policy",
    "PreferenceMode",
    "Preferences",
    "ProbabilityBounds",
    "Protocol",
    "ProximalOutcome",
    "Questionnaire",
    "QuietHours",
    "ReminderPolicy",
    "ReviewFlag",
    "Reviews",
    "Rule",
    "Severity",
    "SingleChoiceItem",
    "Smart",
    "Stage",
    "Study",
    "TailoringVariable",
    "TextAttribute",
    "TimeWindow",
    "Track",
    "TrackAssignment",
    "ValueType",
    "WearableMetric",
    "WearableOutcome",
    "WearableVariable",
    "Weekday",
    "YesNoItem",
]
