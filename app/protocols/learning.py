"""Learning policies in the protocol: Thompson sampling over a Bayesian linear model of a
proximal outcome (see docs/learning-policies.md).

The learning policy takes over one rule's randomization: when the rule table picks that
rule, the probability of its "treat" option comes from the posterior instead of the
rule's fixed numbers. Everything around it (availability, burden, contraindications,
tracks, preferences, bounds) is the engine's, as for any rule.
"""

from typing import Annotated, Literal

from pydantic import Field

from app.protocols.primitives import CelName, Identifier, LocalTime, ProtocolModel

FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]


class NormalPrior(ProtocolModel):
    """Independent normal priors, one per coefficient: the intercept first, then one per
    feature in the order of `features`."""

    mean: tuple[FiniteFloat, ...]
    """Prior means."""
    variance: tuple[Annotated[float, Field(gt=0, allow_inf_nan=False)], ...]
    """Prior variances (positive)."""


class LearningPrior(ProtocolModel):
    """The prior of the model's two blocks of coefficients."""

    baseline: NormalPrior
    """The outcome without treatment (intercept, then the features)."""
    effect: NormalPrior
    """The treatment effect (intercept, then the features)."""


PositiveVariance = Annotated[float, Field(gt=0, allow_inf_nan=False)]


class RandomEffects(ProtocolModel):
    """Per-participant coefficients shrunk towards the pool (a random-effects prior, as in
    MiWaves): participant i's coefficients are the pooled ones plus a deviation drawn from
    a normal with mean 0 and these variances, one per coefficient (intercept first, then the
    features). Small variances keep everyone near the pool; large ones let each
    participant's own data decide."""

    baseline_variance: tuple[PositiveVariance, ...]
    """Variances of the deviations of the baseline coefficients."""
    effect_variance: tuple[PositiveVariance, ...]
    """Variances of the deviations of the treatment-effect coefficients."""


class Smoothing(ProtocolModel):
    """Oralytics' smoothing of P(treat) with a generalized logistic: instead of the
    posterior probability that the effect is beyond the threshold (a step function of the
    effect, averaged over its posterior), the average of a logistic of the effect's
    advantage a (how far it is beyond the threshold, in outcome units, positive = better):

        P(treat) = low + (high - low) * E[1 / (1 + c * exp(-slope * a))]

    with low and high the learning policy's probability bounds. A steep slope approaches the
    unsmoothed probability (rescaled into the bounds); a gentle one keeps P(treat) away from
    the bounds until the evidence is strong, which keeps the data more analysable."""

    slope: Annotated[float, Field(gt=0, allow_inf_nan=False)]
    """Steepness of the logistic, per outcome unit."""
    c: Annotated[float, Field(gt=0, allow_inf_nan=False)] = 1.0
    """Shifts the logistic: 1 puts the midpoint of the bounds at no advantage."""


class UpdateCadence(ProtocolModel):
    """When the posterior is updated: daily at a local time of the study's
    `default_timezone`."""

    at: LocalTime
    """Local time of the daily update, e.g. "03:00"."""


class LearningBounds(ProtocolModel):
    """The learning policy's own clipping of the probability of treating."""

    min: float = Field(ge=0.0, le=1.0)
    """Lowest probability of treating."""
    max: float = Field(ge=0.0, le=1.0)
    """Highest probability of treating."""


class ThompsonSampling(ProtocolModel):
    """Posterior-probability (Thompson) sampling for one rule choosing between a "treat"
    option and an option of category none.

    Model: outcome = x·alpha + (A - pi)·x·beta + noise, with x = (1, features), A = 1 when
    the treat option was delivered, pi its probability, and noise normal with a known
    variance. P(treat) = P(x·beta beyond `threshold` | data), clipped."""

    kind: Literal["thompson_sampling"] = "thompson_sampling"
    """The kind of learning policy (only thompson_sampling today)."""
    rule: Identifier
    """The rule whose randomization is learned; its `randomize` names exactly the treat
    option(s) and one option of category none."""
    treat: Identifier | tuple[Identifier, ...]
    """The option whose probability is learned, or a list of options: then each has its
    own effect (with the same prior), and each gets the posterior probability that it is
    the best of all, nothing included (see docs/learning-policies.md)."""
    outcome: CelName
    """The proximal outcome modelled (a name of `proximal_outcomes`, numeric)."""
    better: Literal["higher", "lower"] = "higher"
    """Whether a higher or a lower outcome is an improvement (lower for pain interference)."""
    threshold: FiniteFloat = 0.0
    """Treat with the posterior probability that the effect is beyond this, in outcome
    units (above it when `better` is higher, below it when lower)."""
    features: tuple[CelName, ...] = ()
    """Tailoring variables (numbers) the effect and the baseline depend on."""
    prior: LearningPrior
    """Normal prior of the coefficients."""
    noise_variance: Annotated[float, Field(gt=0, allow_inf_nan=False)]
    """Known variance of the outcome around the model."""
    probability_bounds: LearningBounds | None = None
    """Clipping of P(treat); default the policy's `probability_bounds`. The policy's
    bounds apply afterwards as for every rule."""
    fallback_probability: float = Field(ge=0.0, le=1.0)
    """P(treat) before the first update, with too little data, or when computing the
    probability fails."""
    min_rows: Annotated[int, Field(ge=0)] = 20
    """Rows with an outcome needed before the posterior is used."""
    update: UpdateCadence
    """When the posterior is updated."""
    smoothing: Smoothing | None = None
    """Smooth P(treat) with a generalized logistic (Oralytics) instead of clipping the
    posterior probability; needs `probability_bounds` (or the policy's) as its low and high."""
    random_effects: RandomEffects | None = None
    """Per participant with shrinkage towards the pool; without it, one posterior pooled
    over the participants."""

    @property
    def treat_options(self) -> tuple[str, ...]:
        """The treat options, in order (one or more)."""
        return (self.treat,) if isinstance(self.treat, str) else tuple(self.treat)
