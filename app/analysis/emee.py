"""Causal excursion effects on a binary proximal outcome, on the log relative-risk scale:
the estimator for marginal excursion effects (EMEE) of Qian, Yoo, Klasnja, Almirall and
Murphy (2021), "Estimating time-varying causal excursion effects in mobile health with
binary outcomes", Biometrika 108(3), as implemented by `emee()` in the R package
MRTAnalysis.

At every available decision point, with the same weights W = (p~/p)^A ((1-p~)/(1-p))^(1-A)
and centred treatment as WCLS (app.analysis.wcls), the estimating equation

    sum W exp(-A f'beta) (Y - exp(g'alpha + A f'beta)) [g, (A - p~) f] = 0

is solved for (alpha, beta) by Newton's method: exp(f'beta) is the relative risk of the
outcome when treated rather than not, marginal over everything but the moderators f.
The variance is the participant-clustered sandwich with the small-sample correction of
MRTAnalysis (each participant's residuals times (I - H_i)^-1, H_i their block of the hat
matrix of the linearised equation, with the derivative's expectation given the covariates,
as `emee()` computes it), and inference uses t with n - p - q degrees of freedom.
"""

from collections.abc import Mapping, Sequence
from enum import StrEnum

import numpy as np
import numpy.typing as npt

from app.analysis.wcls import FloatArray, WclsResult, prepare, result

MAX_ITERATIONS = 100
TOLERANCE = 1e-10


def emee(
    data: Mapping[str, npt.ArrayLike],
    *,
    outcome: str,
    id: str = "participant_id",  # shadows the builtin: it is the name MRTAnalysis uses
    treatment: str = "treated",
    rand_prob: str | float = "probability",
    availability: str | None = "available",
    moderators: Sequence[str] = (),
    controls: Sequence[str] = (),
    numerator_prob: float | None = 0.5,
    confidence: float = 0.95,
    small_sample_correction: bool = True,
) -> WclsResult:
    """Estimate the causal excursion effect of treatment on a 0/1 outcome, log relative
    risk. The arguments are those of ``wcls``, except that the numerator probability
    defaults to the constant 0.5 (as ``emee()`` does, not to p) and the outcome must be 0
    or 1. Raises ValueError naming the column or the reason (also when the equation has
    no solution, e.g. an outcome that never or always happens)."""
    prepared = prepare(
        data,
        outcome=outcome,
        id=id,
        treatment=treatment,
        rand_prob=rand_prob,
        availability=availability,
        moderators=moderators,
        controls=controls,
        numerator_prob=numerator_prob,
        confidence=confidence,
    )
    if not np.all(np.isin(prepared.y, (0.0, 1.0))):
        raise ValueError(
            f"outcome column {outcome!r} must contain only 0 and 1 (a binary outcome) at "
            "available decision points; use the continuous analysis (WCLS) otherwise"
        )
    if prepared.y.min() == prepared.y.max():
        raise ValueError(
            f"outcome column {outcome!r} is always {int(prepared.y[0])} at available decision "
            "points: there is no relative risk to estimate"
        )
    theta, covariance = _fit(
        prepared.y,
        prepared.a,
        prepared.g,
        prepared.f,
        prepared.design * prepared.weight[:, None],
        prepared.cluster,
        prepared.n_participants,
        small_sample_correction,
    )
    return result(prepared, theta, covariance, confidence, small_sample_correction)


def _parts(
    theta: FloatArray, y: FloatArray, a: FloatArray, g: FloatArray, f: FloatArray
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """The residual r = exp(-A f'beta) Y - exp(g'alpha) of each row; -dr/dtheta; and its
    expectation given the covariates (Y replaced by exp(g'alpha + A f'beta)), which
    MRTAnalysis uses in the small-sample correction's hat matrix."""
    q = g.shape[1]
    baseline = np.exp(g @ theta[:q])
    shrink = np.exp(-a * (f @ theta[q:]))
    residual = shrink * y - baseline
    alpha_part = baseline[:, None] * g
    observed = np.hstack([alpha_part, (a * y * shrink)[:, None] * f])
    expected = np.hstack([alpha_part, (a * baseline)[:, None] * f])
    return residual, observed, expected


def _fit(
    y: FloatArray,
    a: FloatArray,
    g: FloatArray,
    f: FloatArray,
    weighted_design: FloatArray,
    cluster: npt.NDArray[np.intp],
    n_clusters: int,
    small_sample_correction: bool,
) -> tuple[FloatArray, FloatArray]:
    """Newton's method on the estimating equation, then the sandwich covariance."""
    q = g.shape[1]
    theta = np.zeros(q + f.shape[1])
    theta[0] = np.log(max(float(np.mean(y)), 1e-12))
    for _ in range(MAX_ITERATIONS):
        residual, minus_gradient, _ = _parts(theta, y, a, g, f)
        bread = weighted_design.T @ minus_gradient
        step = np.linalg.solve(bread, weighted_design.T @ residual)
        theta = theta + step
        if not np.all(np.isfinite(theta)):
            break
        if np.max(np.abs(step)) < TOLERANCE:
            break
    else:
        raise ValueError("the estimating equation did not converge in 100 Newton steps")
    if not np.all(np.isfinite(theta)):
        raise ValueError("the estimating equation has no finite solution for these data")
    residual, minus_gradient, expected = _parts(theta, y, a, g, f)
    bread = weighted_design.T @ minus_gradient
    bread_inv = np.linalg.inv(bread)
    dim = len(theta)
    identity = np.eye(dim)
    meat = np.zeros((dim, dim))
    order = np.argsort(cluster, kind="stable")
    starts = np.searchsorted(cluster[order], np.arange(n_clusters))
    for rows in np.split(order, starts[1:]):
        q_i = weighted_design[rows].T
        p_i = expected[rows]
        score = q_i @ residual[rows]
        if small_sample_correction:
            # (I - H_i)^-1 r_i with H_i = P_i B^-1 Q_i, P_i the expected -dr/dtheta, by the
            # push-through identity, as in WCLS (where P_i = X_i and Q_i = X_i' W_i).
            try:
                correction = np.linalg.solve(identity - bread_inv @ (q_i @ p_i), bread_inv @ score)
            except np.linalg.LinAlgError:
                raise ValueError(
                    "a participant has leverage 1 (their decisions alone determine some "
                    "coefficient); the small-sample correction is undefined"
                ) from None
            score = score + q_i @ (p_i @ correction)
        meat += np.outer(score, score)
    return theta, bread_inv @ meat @ bread_inv.T


class OutcomeType(StrEnum):
    continuous = "continuous"
    binary = "binary"


def method_of(outcome_type: OutcomeType) -> dict[str, str]:
    """The estimator and the scale of its effect, for the report."""
    if outcome_type is OutcomeType.binary:
        return {"method": "emee", "scale": "log relative risk"}
    return {"method": "wcls", "scale": "difference in means"}
