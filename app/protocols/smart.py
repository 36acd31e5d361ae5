"""SMART: stage-wise re-randomization of participants to tracks by their response."""

from pydantic import Field

from app.protocols.primitives import CelExpression, Identifier, PositiveInt, ProtocolModel


class TrackAssignment(ProtocolModel):
    """Either a fixed track or randomization probabilities over tracks (exactly one)."""

    track: Identifier | None = None
    """Assign this track."""
    randomize: dict[Identifier, float] | None = None
    """Draw a track with these probabilities (between 0 and 1, summing to 1)."""

    def probabilities(self) -> dict[str, float]:
        if self.track is not None:
            return {self.track: 1.0}
        return dict(self.randomize or {})


class NextStage(ProtocolModel):
    """Track assignment at the end of a stage, by response."""

    responders: TrackAssignment
    """For participants whose responder_when is true at the end of the stage."""
    non_responders: TrackAssignment
    """For everyone else (including when responder_when cannot be evaluated)."""


class Stage(ProtocolModel):
    """A period of the study; stages follow each other from enrollment day 0."""

    id: Identifier
    """Unique among stages; CEL sees the current one as `stage`."""
    duration_days: PositiveInt | None = None
    """Length of the stage. Only the last stage may omit it (it lasts to the study end)."""
    responder_when: CelExpression | None = None
    """CEL condition evaluated on the last day of the stage; true means responder.
    Required when `next` is given."""
    next: NextStage | None = None
    """How participants are assigned to tracks for the following stage."""


class Track(ProtocolModel):
    """A treatment track that SMART assigns; rules see it as `track`."""

    description: str = ""
    """What the track means clinically."""
    options: tuple[Identifier, ...] | None = None
    """If given, only these options may be delivered on this track; other options get
    probability 0 (options of category none are always allowed)."""
    max_prompts_per_day: PositiveInt | None = None
    """Overrides the policy's daily cap on this track."""


class Smart(ProtocolModel):
    """A sequential multiple-assignment randomized trial design."""

    stages: tuple[Stage, ...] = Field(min_length=1)
    """The stages in order."""
    tracks: dict[Identifier, Track] = Field(default_factory=dict)
    """The tracks stages assign, by name."""
    initial: TrackAssignment | None = None
    """Track at enrollment (default: none, `track` is "" until the first re-randomization)."""
