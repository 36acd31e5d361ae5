"""The Bayesian linear model behind Thompson sampling, without the database.

Model (action-centred, as in HeartSteps V2): for a decision with features f, x = (1, f),

    outcome = x·alpha + (A - pi) x·beta + noise,   noise ~ N(0, noise_variance)

where A is 1 when the treat option was delivered and pi is the probability it had. Centring
the action by pi keeps the effect estimate x·beta unbiased even where the baseline x·alpha
is misspecified, because (A - pi) has mean zero given the features. The coefficients
theta = (alpha, beta) have independent normal priors; with a known noise variance the
posterior is normal, in closed form:

    precision = prior_precision + Z'Z / noise_variance
    mean      = precision^-1 (prior_precision prior_mean + Z'y / noise_variance)

with Z the design rows (x, (A - pi) x). Updates are sequential: each stored posterior is
the previous one (or the prior) updated with the rows new since, which equals updating the
prior with all rows at once.
"""

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from app.decision_rules import shrinkage
from app.decision_rules.shrinkage import Matrix, Sums, Vector
from app.protocols.learning import ThompsonSampling


@dataclass(frozen=True)
class Posterior:
    """A stored posterior as the policy uses it."""

    id: str
    mean: Vector
    covariance: Matrix
    # Rows with an outcome used so far, over the whole chain of updates.
    rows_total: int
    # With random effects (per-participant shrinkage): D, the noise variance the sums were
    # taken with, and each participant's cumulative sums (see ``shrinkage``); else None.
    deviation: Matrix | None = field(default=None, compare=False)
    noise_variance: float = 1.0
    participants: Mapping[str, Sums] = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class LearningRow:
    """One decision as the update uses it."""

    features: Mapping[str, Any]
    # The probability of the (first) treat option the draw used, and whether it was chosen.
    pi: float
    treated: bool
    outcome: float
    # With several treat options: (probability, chosen) of the second, third ... ones.
    more: tuple[tuple[float, bool], ...] = ()


def prior(config: ThompsonSampling) -> tuple[Vector, Matrix]:
    """The baseline block, then one effect block per treat option (each with the declared
    effect prior)."""
    k = len(config.treat_options)
    effect = config.prior.effect
    mean = np.array([*config.prior.baseline.mean, *effect.mean * k], dtype=np.float64)
    variance = [*config.prior.baseline.variance, *effect.variance * k]
    return mean, np.diag(np.array(variance, dtype=np.float64))


def feature_vector(config: ThompsonSampling, values: Mapping[str, Any]) -> Vector:
    """x = (1, features); ValueError naming the feature when one is missing or not a number."""
    out = [1.0]
    for name in config.features:
        value = values.get(name)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"feature {name} is {value!r}, not a number")
        if not math.isfinite(value):
            raise ValueError(f"feature {name} is {value!r}")
        out.append(float(value))
    return np.array(out, dtype=np.float64)


def design_row(config: ThompsonSampling, row: LearningRow) -> Vector:
    x = feature_vector(config, row.features)
    actions = [(row.pi, row.treated), *row.more]
    return np.concatenate([x, *(((1.0 if chosen else 0.0) - pi) * x for pi, chosen in actions)])


def update(
    mean: Vector,
    covariance: Matrix,
    rows: Sequence[Vector],
    outcomes: Sequence[float],
    noise: float,
) -> tuple[Vector, Matrix]:
    """The posterior after the rows (the conjugate normal update with known noise)."""
    if not rows:
        return mean.copy(), covariance.copy()
    return update_from_sums(mean, covariance, *sums(rows, outcomes), noise)


def sums(rows: Sequence[Vector], outcomes: Sequence[float]) -> tuple[Matrix, Vector]:
    """The sufficient statistics Z'Z and Z'y of the rows: an update over many rows adds
    them up a page at a time."""
    z = np.vstack(rows)
    y = np.array(outcomes, dtype=np.float64)
    return z.T @ z, z.T @ y


def update_from_sums(
    mean: Vector, covariance: Matrix, ztz: Matrix, zty: Vector, noise: float
) -> tuple[Vector, Matrix]:
    """The posterior from the rows' sufficient statistics (see ``update``)."""
    prior_precision = np.linalg.inv(covariance)
    precision = prior_precision + ztz / noise
    new_covariance = np.linalg.inv(precision)
    # Symmetrize: inv() leaves rounding asymmetry that would grow over many updates.
    new_covariance = (new_covariance + new_covariance.T) / 2
    new_mean = new_covariance @ (prior_precision @ mean + zty / noise)
    return new_mean, new_covariance


def effect(
    config: ThompsonSampling, posterior: Posterior, x: Vector, participant: str | None = None
) -> tuple[float, float]:
    """Posterior mean and variance of the treatment effect x·beta at features x: the
    participant's own (shrunk towards the pool) where the posterior has random effects."""
    mean, covariance = participant_coefficients(posterior, participant)
    means, covariance = effects(mean, covariance, x)
    return float(means[0]), float(covariance[0, 0])


def effects(mean: Vector, covariance: Matrix, x: Vector) -> tuple[Vector, Matrix]:
    """The effects of every treat option at features x (x·beta_k) and their covariance,
    from coefficients laid out as baseline, then one effect block per option."""
    d = len(x)
    k = len(mean) // d - 1
    # Row j of the map picks x·beta_j out of the coefficients.
    pick = np.zeros((k, len(mean)))
    for j in range(k):
        pick[j, d * (j + 1) : d * (j + 2)] = x
    return pick @ mean, pick @ covariance @ pick.T


def participant_coefficients(
    posterior: Posterior, participant: str | None
) -> tuple[Vector, Matrix]:
    """The coefficients a decision uses: the participant's own (random effects) or the
    pool's."""
    if posterior.deviation is None:
        return posterior.mean, posterior.covariance
    sums = posterior.participants.get(participant or "")
    return shrinkage.participant(
        posterior.mean, posterior.covariance, sums, posterior.deviation, posterior.noise_variance
    )


# Standard normal draws shared by every decision with several treat options (common random
# numbers: the probabilities are a deterministic function of the posterior and features,
# re-derivable as numpy.random.default_rng(0).standard_normal((8192, k))).
_DRAWS = 8192


def best_option_probabilities(
    config: ThompsonSampling, means: Vector, covariance: Matrix
) -> dict[str, float]:
    """P(each treat option is the best, and beyond the threshold; else nothing is best) for
    several treat options, by Monte Carlo over the effects' posterior. The key "" is
    nothing."""
    k = len(means)
    z = np.random.default_rng(0).standard_normal((_DRAWS, k))
    # A square root of the covariance that tolerates a singular one (eigenvalues >= 0).
    values, vectors = np.linalg.eigh((covariance + covariance.T) / 2)
    root = vectors * np.sqrt(np.clip(values, 0.0, None))
    draws = means + z @ root.T
    advantage = draws - config.threshold if config.better == "higher" else config.threshold - draws
    best = np.argmax(advantage, axis=1)
    beyond = advantage[np.arange(_DRAWS), best] > 0
    result = {"": float(np.mean(~beyond))}
    for j, option in enumerate(config.treat_options):
        result[option] = float(np.mean(beyond & (best == j)))
    return result


def probability_beyond(config: ThompsonSampling, mean: float, variance: float) -> float:
    """P(effect beyond the threshold) for a normal effect: above it when higher is better,
    below it when lower is better."""
    if variance <= 0:
        above = 1.0 if mean > config.threshold else 0.0
    else:
        z = (mean - config.threshold) / math.sqrt(variance)
        above = 0.5 * math.erfc(-z / math.sqrt(2))
    return above if config.better == "higher" else 1.0 - above


# E[f(Z)] for Z ~ N(0, 1) as the mean of f at the standard normal's quantiles of 4,096
# equal slices (the midpoint rule in probability). Unlike Gauss-Hermite it stays accurate
# for a steep logistic (a near step): the error is below 1/4,096 for any f in [0, 1] that
# changes direction at most once.
_SLICES = 4096
_NODES = np.array(
    [statistics.NormalDist().inv_cdf((i + 0.5) / _SLICES) for i in range(_SLICES)],
    dtype=np.float64,
)


def smoothed_probability(
    config: ThompsonSampling, mean: float, variance: float, low: float, high: float
) -> float:
    """P(treat) under the protocol's smoothing: low + (high - low) E[logistic(advantage)],
    the advantage normal with the effect's posterior (see ``Smoothing``)."""
    smoothing = config.smoothing
    assert smoothing is not None  # noqa: S101
    centre = mean - config.threshold if config.better == "higher" else config.threshold - mean
    advantage = centre + math.sqrt(max(variance, 0.0)) * _NODES
    # exp() of a large negative advantage overflows to inf: 1 / (1 + inf) is 0, as it should.
    with np.errstate(over="ignore"):
        logistic = 1.0 / (1.0 + smoothing.c * np.exp(-smoothing.slope * advantage))
    return low + (high - low) * float(np.mean(logistic))


def clip(p: float, low: float, high: float) -> float:
    return min(high, max(low, p))
