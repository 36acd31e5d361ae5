"""Power and sample size of a micro-randomized trial by the formula of Liao, Klasnja, Tewari
and Murphy (2016), "Sample size calculations for micro-randomized trials in mHealth",
Statistics in Medicine 35(12):1944-1971, doi:10.1002/sim.6847, as the R package
MRTSampleSize (Liao, Huang, Seewald, Sun; CRAN 0.3.0, ``calculatePower`` and
``calculateSampleSize``) implements it.

The trial has ``days`` x ``occasions_per_day`` decision points t. At each, a participant is
available with probability tau_t and, if available, treated with probability p_t. The
standardized proximal effect beta(t) (the effect on the proximal outcome divided by the
outcome's residual standard deviation) is modelled as Z_t'b with Z_t = (1, day, day^2)
truncated to ``effect_terms`` columns (1: constant, 2: linear, 3: quadratic in the study
day). The test is of H0: b = 0 by the WCLS statistic with Hotelling's small-sample
correction; under the alternative the statistic is noncentral F(p, N - p - q) with
noncentrality

    c_N = N d' M d,   M = sum_t tau_t p_t (1 - p_t) Z_t Z_t',
                      d = (sum_t tau_t Z_t Z_t')^-1 sum_t tau_t Z_t beta(t),

(d the availability-weighted projection of the trajectory on Z), and the power for N
participants at level alpha is P(F(p, N - p - q; c_N) > F^-1(p, N - p - q)(1 - alpha)), p =
``effect_terms`` and q = ``control_terms`` the number of terms of the working model for the
outcome under no treatment (MRTSampleSize always uses q = 3, a quadratic in the day).

Pure: numpy, and scipy (imported where used: the API process never loads it).
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
Shape = Literal["constant", "linear", "quadratic"]
EFFECT_TERMS: dict[Shape, int] = {"constant": 1, "linear": 2, "quadratic": 3}


def _check_days(days: int) -> None:
    if days < 1:
        raise ValueError("days must be at least 1")


def _quadratic(days: int, rise: float, extreme_day: float) -> tuple[float, float]:
    """Coefficients (b, c) of b k + c k^2 over days k = 0..days-1 whose derivative is 0 at
    k = extreme_day - 1 and whose mean over the days is ``rise`` (MRTSampleSize's
    ``getTrueBeta``: the day of the extreme is counted from 1)."""
    k = np.arange(days, dtype=float)
    matrix = np.array([[1.0, 2.0 * (extreme_day - 1.0)], [k.sum(), (k**2).sum()]])
    b, c = np.linalg.solve(matrix, np.array([0.0, rise * days]))
    return float(b), float(c)


def _linear(days: int, mean: float, initial: float) -> FloatArray:
    """From ``initial`` on day 1, by equal steps, to 2 mean - initial on the last day."""
    if days == 1:
        return np.array([mean])
    return np.linspace(initial, 2.0 * mean - initial, days)


def effect_trajectory(
    days: int,
    shape: Shape,
    mean: float,
    initial: float | None = None,
    peak_day: float | None = None,
) -> FloatArray:
    """The standardized effect on each study day, as MRTSampleSize's ``generateBeta``:
    constant at ``mean``; linear from ``initial`` with average ``mean``; or quadratic from
    ``initial`` on day 1 through a peak on ``peak_day`` (counted from 1), with average
    ``mean``."""
    _check_days(days)
    if shape == "constant":
        return np.full(days, float(mean))
    if initial is None:
        raise ValueError(f"a {shape} effect needs its initial value")
    if shape == "linear":
        return _linear(days, mean, initial)
    if peak_day is None:
        raise ValueError("a quadratic effect needs the day of its peak")
    b, c = _quadratic(days, mean - initial, peak_day)
    k = np.arange(days, dtype=float)
    return initial + b * k + c * k**2


def availability_trajectory(
    days: int,
    shape: Shape,
    mean: float,
    initial: float | None = None,
    change_day: float | None = None,
) -> FloatArray:
    """Expected availability on each study day, as MRTSampleSize's ``generateTau``:
    constant; linear from ``initial`` with average ``mean``; or quadratic from ``initial``
    with its extreme (the maximum or the minimum, whichever ``initial`` and ``mean`` make it)
    on ``change_day`` and average ``mean``."""
    _check_days(days)
    if shape == "constant":
        return np.full(days, float(mean))
    if initial is None:
        raise ValueError(f"a {shape} availability needs its initial value")
    if shape == "linear":
        return _linear(days, mean, initial)
    if change_day is None:
        raise ValueError("a quadratic availability needs the day of its change")
    # MRTSampleSize mirrors the curve of the effect about the mean: initial and extreme
    # swap roles, so the same constraints (derivative 0 on change_day, the mean) hold.
    b, c = _quadratic(days, initial - mean, change_day)
    k = np.arange(days, dtype=float)
    return initial - b * k - c * k**2


def _per_decision_point(
    values: float | Sequence[float] | FloatArray, days: int, occasions: int, name: str
) -> FloatArray:
    """A constant, one value a day, or one a decision point, as one a decision point."""
    array = np.atleast_1d(np.asarray(values, dtype=float))
    total = days * occasions
    if array.size == 1:
        return np.full(total, float(array[0]))
    if array.size == days:
        return np.repeat(array, occasions)
    if array.size == total:
        return array.copy()
    raise ValueError(
        f"{name} has {array.size} values; give one, one a day ({days}) or one a decision "
        f"point ({total})"
    )


@dataclass(frozen=True)
class MrtDesign:
    """The inputs of the formula, one value per decision point (day-major)."""

    days: int
    occasions_per_day: int
    probability: FloatArray
    availability: FloatArray
    effect: FloatArray
    effect_terms: int = 1
    control_terms: int = 3

    @classmethod
    def of(
        cls,
        *,
        days: int,
        occasions_per_day: int,
        probability: float | Sequence[float] | FloatArray,
        availability: float | Sequence[float] | FloatArray,
        effect: float | Sequence[float] | FloatArray,
        effect_terms: int = 1,
        control_terms: int = 3,
    ) -> "MrtDesign":
        """Each of probability, availability and effect is a constant, one value a day or
        one a decision point (as in MRTSampleSize, a value a day holds at every decision
        point of the day). ``effect_terms``: 1, 2 or 3 (constant, linear or quadratic in the
        day); MRTSampleSize takes it from the effect's shape (``EFFECT_TERMS``)."""
        _check_days(days)
        if occasions_per_day < 1:
            raise ValueError("occasions_per_day must be at least 1")
        if effect_terms not in (1, 2, 3):
            raise ValueError("effect_terms must be 1, 2 or 3")
        if control_terms < 1:
            raise ValueError("control_terms counts the intercept: at least 1")
        p = _per_decision_point(probability, days, occasions_per_day, "probability")
        tau = _per_decision_point(availability, days, occasions_per_day, "availability")
        beta = _per_decision_point(effect, days, occasions_per_day, "effect")
        if np.any((p < 0) | (p > 1)):
            raise ValueError("randomization probabilities must lie in [0, 1]")
        if np.any(tau < 0):
            raise ValueError("availability must not be negative")
        if not np.all(np.isfinite(beta)):
            raise ValueError("the effect must be finite")
        return cls(days, occasions_per_day, p, tau, beta, effect_terms, control_terms)

    def basis(self) -> FloatArray:
        """Z: one row per decision point, columns 1, day, day^2 (days counted from 0)."""
        day = np.repeat(np.arange(self.days, dtype=float), self.occasions_per_day)
        return np.column_stack([day**i for i in range(self.effect_terms)])

    def noncentrality_per_participant(self) -> float:
        """d' M d: the noncentrality parameter c_N divided by N."""
        z = self.basis()
        tau, p = self.availability, self.probability
        m = z.T @ (z * (tau * p * (1.0 - p))[:, None])
        gram = z.T @ (z * tau[:, None])
        try:
            d = np.linalg.solve(gram, z.T @ (tau * self.effect))
        except np.linalg.LinAlgError:
            raise ValueError(
                "the effect's trajectory is not identified: too few days with availability "
                f"for {self.effect_terms} terms"
            ) from None
        return float(d @ m @ d)


def power(design: MrtDesign, participants: int, alpha: float = 0.05) -> float:
    """The power of the test for ``participants`` participants at level ``alpha``."""
    from scipy import stats  # here: heavy, and the API process never needs it

    p, q = design.effect_terms, design.control_terms
    df2 = participants - p - q
    if df2 < 1:
        raise ValueError(f"{participants} participants are too few for {p + q} parameters")
    if not 0 < alpha < 1:
        raise ValueError("alpha must lie strictly between 0 and 1")
    noncentrality = participants * design.noncentrality_per_participant()
    critical = stats.f.ppf(1.0 - alpha, p, df2)
    return float(stats.ncf.sf(critical, p, df2, noncentrality))


def sample_size(
    design: MrtDesign,
    target_power: float = 0.8,
    alpha: float = 0.05,
    *,
    max_participants: int = 1000,
) -> int:
    """The fewest participants with at least ``target_power``, searched upwards from the
    fewest the test allows (p + q + 1). MRTSampleSize searches from 10 and reports "10 or
    fewer" below that, since the formula is asymptotic; the caller may say the same.
    ValueError when even ``max_participants`` are not enough."""
    if not 0 < target_power < 1:
        raise ValueError("target_power must lie strictly between 0 and 1")
    fewest = design.effect_terms + design.control_terms + 1
    if max_participants < fewest:
        raise ValueError(f"max_participants must be at least {fewest}")
    per_participant = design.noncentrality_per_participant()
    if per_participant <= 0:
        raise ValueError("no effect (or no availability): no number of participants will do")
    from scipy import stats  # here: heavy, and the API process never needs it

    p, q = design.effect_terms, design.control_terms
    counts = np.arange(fewest, max_participants + 1)
    df2 = counts - p - q
    # The power grows with N (the noncentrality does, and the critical value falls), so
    # the first count over the target is the answer.
    powers = stats.ncf.sf(stats.f.ppf(1.0 - alpha, p, df2), p, df2, counts * per_participant)
    enough = np.flatnonzero(powers >= target_power)
    if enough.size == 0:
        raise ValueError(
            f"{max_participants} participants do not reach {target_power:.0%} power "
            f"(they give {float(powers[-1]):.1%})"
        )
    return int(counts[enough[0]])


def standard_error(design: MrtDesign, participants: int) -> float:
    """The formula's standard error of the standardized constant effect (effect_terms 1):
    1 / sqrt(N sum_t tau_t p_t (1 - p_t)), the yardstick for the WCLS standard errors of a
    simulation (divided by the outcome's residual standard deviation)."""
    if design.effect_terms != 1:
        raise ValueError("the standard error is that of a constant effect (effect_terms=1)")
    tau, p = design.availability, design.probability
    information = participants * float(np.sum(tau * p * (1.0 - p)))
    return math.inf if information <= 0 else 1.0 / math.sqrt(information)
