"""Questionnaires answered in EMA prompts, their items and the escalations items raise."""

import math
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import Field

from app.core.text import text_problem
from app.protocols.primitives import (
    CelExpression,
    Identifier,
    NonNegativeInt,
    Number,
    PositiveInt,
    ProtocolModel,
)

# Relative tolerance for "is this value on the step grid": 0.1 + 0.2 must count as 0.3.
GRID_TOLERANCE = 1e-9


class Severity(StrEnum):
    low = "low"
    medium = "medium"
    high = "high"
    critical = "critical"


class SafetyResponse(ProtocolModel):
    """What the participant is shown, at once, when an answer raises this escalation (for
    example a crisis line): in the EMA batch result and as a push."""

    text: str = Field(min_length=1, max_length=500)
    """Shown to the participant, e.g. "If you are in danger now, call 988 (24/7)."."""
    link: str | None = Field(None, pattern=r"^(https://|tel:)\S+$", max_length=500)
    """Where the app sends the participant: an https:// page or a tel: number."""


class Escalation(ProtocolModel):
    """An answer that must alert the care team (for example a self-harm item answered yes)."""

    when: CelExpression
    """CEL condition over `value`, the answer to this item (e.g. "value >= 10")."""
    consecutive: PositiveInt = 1
    """Raise the alert only when this many consecutive answers to the item match `when`."""
    severity: Severity = Severity.high
    """How urgent the alert is for the care team: low, medium, high or critical."""
    message: str = Field(min_length=1)
    """What the care team sees in the alert."""
    safety_response: SafetyResponse | None = None
    """Shown to the participant at once when the alert is raised (see SafetyResponse)."""
    escalate_after_minutes: PositiveInt | None = Field(None, le=10080)
    """When the alert is still unacknowledged this many minutes after it was sent to a
    level of the study's care routes, it is sent to the next level (unset: never)."""


class ItemBase(ProtocolModel):
    id: Identifier
    """Unique within the questionnaire; data refer to it as "<questionnaire>.<item>"."""
    version: PositiveInt = 1
    """Raise it whenever the wording or the scale changes, so analyses can tell answers apart."""
    text: str = Field(min_length=1)
    """The question shown to the participant."""
    optional: bool = False
    """If true, the participant may skip the item."""
    escalation: Escalation | None = None
    """Alert the care team when an answer matches (see Escalation)."""
    enable_when: CelExpression | None = None
    """Branching: ask this item only when this CEL condition over the answers to earlier
    items of the same questionnaire holds (each earlier item by its id, e.g.
    `pain >= 7 && flare == true`). A condition that reads a skipped item is false. An
    answer to an item not asked is rejected; a required item is required only when asked."""

    def validate_answer(self, value: Any) -> str | None:
        """Why `value` is not an acceptable answer to this item, or None if it is.

        A skipped item is sent as None; it is acceptable only when the item is optional.
        """
        if value is None:
            return None if self.optional else "an answer is required"
        return self._check_value(value)

    def _check_value(self, value: Any) -> str | None:
        raise NotImplementedError


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def on_grid(value: float, start: float, step: float) -> bool:
    steps = (value - start) / step
    return abs(steps - round(steps)) <= GRID_TOLERANCE * max(1.0, abs(steps))


class NumericRatingItem(ItemBase):
    """A rating on a numeric scale, e.g. pain intensity 0-10 (NRS)."""

    type: Literal["numeric_rating"]
    min: Number
    """Lowest answer allowed."""
    max: Number
    """Highest answer allowed; must be greater than min."""
    step: Number = 1
    """Distance between allowed answers; must divide max - min."""
    anchors: dict[int | float, str] = Field(default_factory=dict)
    """Labels shown at some scale points, e.g. {0: "No pain", 10: "Worst pain imaginable"}."""

    @property
    def is_integer_scale(self) -> bool:
        """True when every allowed answer is a whole number (CEL sees an int)."""
        return all(isinstance(v, int) for v in (self.min, self.max, self.step))

    def _check_value(self, value: Any) -> str | None:
        if not _is_number(value) or not math.isfinite(value):
            return f"expected a number from {self.min} to {self.max}"
        if not self.min <= value <= self.max:
            return f"{value} is outside {self.min}..{self.max}"
        if not on_grid(value, self.min, self.step):
            return f"{value} is not on the scale (steps of {self.step} from {self.min})"
        return None


class Choice(ProtocolModel):
    value: Identifier
    """What is stored and what CEL expressions compare against."""
    label: str = Field(min_length=1)
    """What the participant sees."""


class SingleChoiceItem(ItemBase):
    """Pick exactly one of the choices."""

    type: Literal["single_choice"]
    choices: tuple[Choice, ...]
    """The possible answers, in display order (at least one, values unique)."""

    def _check_value(self, value: Any) -> str | None:
        values = [c.value for c in self.choices]
        if not isinstance(value, str) or value not in values:
            return f"expected one of {values}"
        return None


class MultipleChoiceItem(ItemBase):
    """Pick any number of the choices (none is allowed)."""

    type: Literal["multiple_choice"]
    choices: tuple[Choice, ...]
    """The possible answers, in display order (at least one, values unique)."""

    def _check_value(self, value: Any) -> str | None:
        values = [c.value for c in self.choices]
        if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
            return f"expected a list of choices from {values}"
        unknown = [v for v in value if v not in values]
        if unknown:
            return f"unknown choices {unknown}; expected values from {values}"
        if len(set(value)) != len(value):
            return "a choice is selected more than once"
        return None


class YesNoItem(ItemBase):
    """A yes/no question; the answer is true or false."""

    type: Literal["yes_no"]

    def _check_value(self, value: Any) -> str | None:
        return None if isinstance(value, bool) else "expected true or false"


class FreeTextItem(ItemBase):
    """A short free-text answer."""

    type: Literal["free_text"]
    max_length: Annotated[int, Field(ge=1, le=10_000)]
    """Maximum number of characters."""

    def _check_value(self, value: Any) -> str | None:
        if not isinstance(value, str):
            return "expected text"
        if len(value) > self.max_length:
            return f"text is {len(value)} characters long; at most {self.max_length} allowed"
        # NUL: PostgreSQL cannot store it; a lone surrogate: no database can.
        return text_problem(value)


class DurationItem(ItemBase):
    """A duration answered in whole minutes, e.g. hours slept."""

    type: Literal["duration"]
    min_minutes: NonNegativeInt = 0
    """Shortest answer allowed, in minutes."""
    max_minutes: PositiveInt
    """Longest answer allowed, in minutes; must be greater than min_minutes."""

    def _check_value(self, value: Any) -> str | None:
        if not isinstance(value, int) or isinstance(value, bool):
            return "expected a whole number of minutes"
        if not self.min_minutes <= value <= self.max_minutes:
            return f"{value} minutes is outside {self.min_minutes}..{self.max_minutes}"
        return None


Item = Annotated[
    NumericRatingItem
    | SingleChoiceItem
    | MultipleChoiceItem
    | YesNoItem
    | FreeTextItem
    | DurationItem,
    Field(discriminator="type"),
]
ChoiceItem = SingleChoiceItem | MultipleChoiceItem

ItemReference = Annotated[
    str,
    Field(
        pattern=r"^(\*|[A-Za-z][A-Za-z0-9_-]*)\.[A-Za-z][A-Za-z0-9_-]*$",
        description='"<questionnaire id>.<item id>", or "*.<item id>" for the item with that '
        "id in every questionnaire that has it (they must agree in type and scale).",
        examples=["morning.pain", "*.interference"],
    ),
]


def _numeric_range(item: "Item | None") -> tuple[float, float]:
    """A numeric item's range (0..0 for anything else: the upload checks refuse it)."""
    if isinstance(item, NumericRatingItem):
        return float(item.min), float(item.max)
    if isinstance(item, DurationItem):
        return float(item.min_minutes), float(item.max_minutes)
    return 0.0, 0.0


def answer_scale(item: Item) -> tuple[Any, ...]:
    """What must agree between items that one wildcard reference pools together."""
    if isinstance(item, NumericRatingItem):
        return (item.type, item.min, item.max, item.step)
    if isinstance(item, SingleChoiceItem | MultipleChoiceItem):
        return (item.type, tuple(c.value for c in item.choices))
    if isinstance(item, DurationItem):
        return (item.type, item.min_minutes, item.max_minutes)
    return (item.type,)


class ScoreMethod(StrEnum):
    sum = "sum"
    mean = "mean"
    weighted_sum = "weighted_sum"


class Score(ProtocolModel):
    """A score computed from a response's numeric items when it is accepted (e.g. the PEG's
    mean of three 0-10 ratings), stored beside the answers under its own id: tailoring
    variables, proximal outcomes and monitoring refer to it like an item
    ("<questionnaire>.<score>"). Sub-scales are scores over fewer items."""

    id: Identifier
    """Unique among the questionnaire's items and scores."""
    description: str = ""
    """What it measures and its source (shown in the data dictionary)."""
    method: ScoreMethod = ScoreMethod.sum
    """sum, mean, or weighted_sum (each item's value times its weight)."""
    items: tuple[Identifier, ...] = Field(min_length=1)
    """The numeric items (numeric ratings or durations) it is computed from."""
    weights: dict[Identifier, float] | None = None
    """For weighted_sum: a weight for each item."""
    reverse: tuple[Identifier, ...] = ()
    """Items scored in reverse (min + max - answer), e.g. a positively worded item in a
    scale where higher means worse."""
    recode: dict[Identifier, dict[Identifier, float]] = Field(default_factory=dict)
    """Numbers for the choices of single-choice items, e.g. a five-option bothersomeness
    item scored 0, 0, 0, 1, 1: {item9: {not_at_all: 0, ..., extremely: 1}}."""
    min_answered: PositiveInt | None = None
    """Compute the score when at least this many of its items are answered, prorated (a
    sum scaled up to all items; a mean of those answered); fewer: the score is missing.
    Default: every item must be answered."""


class Stratum(ProtocolModel):
    """One stratum of a stratification: the value given when the score is in range."""

    value: Identifier
    """The attribute value given (one of the choice attribute's choices)."""
    score: Identifier
    """The questionnaire's score compared."""
    min: Number | None = None
    """The stratum applies when the score is at least this (no bound when omitted)."""
    max: Number | None = None
    """The stratum applies when the score is at most this (no bound when omitted)."""

    def matches(self, scores: dict[str, float]) -> bool:
        value = scores.get(self.score)
        if value is None:
            return False
        return (self.min is None or value >= self.min) and (self.max is None or value <= self.max)


class Stratify(ProtocolModel):
    """Turn the scores of an accepted response into a participant attribute (e.g. the
    STarT Back risk stratum, so care can follow it): the first stratum whose range holds
    gives the value, else `otherwise`. With a score missing no stratum holds; when none
    holds and `otherwise` is unset, the attribute is left as it was."""

    attribute: Identifier
    """A participant attribute of type choice (participant_attributes)."""
    strata: tuple[Stratum, ...] = Field(min_length=1)
    """Checked in order; the first that holds gives the value."""
    otherwise: Identifier | None = None
    """The value when no stratum holds (and every stratum's score was computed)."""

    def value(self, scores: dict[str, float]) -> str | None:
        for stratum in self.strata:
            if stratum.matches(scores):
                return stratum.value
        if self.otherwise is not None and all(s.score in scores for s in self.strata):
            return self.otherwise
        return None


# Scores are presented to references as numeric ratings on a continuous scale (a prorated
# sum or a mean is rarely whole).
_SCORE_STEP = 1e-6


class Questionnaire(ProtocolModel):
    """A set of items answered together in one EMA prompt."""

    id: Identifier
    """Unique in the protocol; schedules and tailoring variables refer to it."""
    version: PositiveInt = 1
    """Raise it whenever items change, so answers can be told apart in analyses."""
    title: str = Field(min_length=1)
    """Shown at the top of the prompt."""
    items: tuple[Item, ...] = Field(min_length=1)
    """The questions, in display order."""
    scores: tuple[Score, ...] = ()
    """Scores computed from the items at ingestion (see Score)."""
    stratify: Stratify | None = None
    """Set a participant attribute from the scores of each accepted response (see
    Stratify)."""
    citation: str = ""
    """Where the instrument is published (shown in the data dictionary)."""
    terms: str = ""
    """The instrument's terms of use or licence, as far as Kairos knows them."""

    @property
    def referable(self) -> tuple["Item", ...]:
        """The items, then each score as a numeric rating over its range: what an item
        reference ("<questionnaire>.<id>") may name."""
        if not self.scores:
            return self.items
        return (*self.items, *(self.score_item(s) for s in self.scores))

    def score_item(self, score: Score) -> NumericRatingItem:
        low, high = self.score_range(score)
        return NumericRatingItem(
            id=score.id,
            type="numeric_rating",
            text=score.description or f"score: {score.method} of {', '.join(score.items)}",
            optional=True,
            min=float(low),
            max=float(high),
            step=_SCORE_STEP,
        )

    def score_range(self, score: Score) -> tuple[float, float]:
        """The lowest and highest value the score can take."""
        ranges = []
        for item_id in score.items:
            item = self.find_item(item_id)
            recoded = score.recode.get(item_id)
            if recoded:
                low, high = min(recoded.values()), max(recoded.values())
            else:
                low, high = _numeric_range(item)
            weight = (score.weights or {}).get(item_id, 1.0)
            if score.method is not ScoreMethod.weighted_sum:
                weight = 1.0
            ranges.append(sorted((low * weight, high * weight)))
        low, high = sum(r[0] for r in ranges), sum(r[1] for r in ranges)
        if score.method is ScoreMethod.mean:
            return low / len(ranges), high / len(ranges)
        return low, high

    def item(self, item_id: str) -> Item:
        """The item with this id; KeyError if there is none."""
        for item in self.items:
            if item.id == item_id:
                return item
        raise KeyError(item_id)

    def find_item(self, item_id: str) -> Item | None:
        return next((i for i in self.items if i.id == item_id), None)
