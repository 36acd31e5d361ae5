"""Per-participant posteriors with shrinkage towards the pool (``random_effects``), without
the database.

Model: participant i's coefficients are phi_i = theta + delta_i, with theta ~ N(m0, S0)
the pooled coefficients (the protocol's prior) and delta_i ~ N(0, D) the participant's
deviation (D diagonal, declared), and the outcomes y_i = Z_i phi_i + noise with a known
noise variance s2. The joint posterior of theta and every delta_i is normal; with
A_i = Z_i'Z_i / s2 and b_i = Z_i'y_i / s2 (each participant's sufficient statistics), and
K_i = (D^-1 + A_i)^-1:

    pooled precision  P = S0^-1 + sum_i (A_i - A_i K_i A_i)
    pooled mean       m = P^-1 (S0^-1 m0 + sum_i (b_i - A_i K_i b_i))
    participant mean  m_i = m + K_i (b_i - A_i m)
    participant cov   C_i = (I - K_i A_i) P^-1 (I - K_i A_i)' + K_i

(delta_i integrated out for the pool; theta for the participant). A participant without
rows gets m and P^-1 + D: the pool, with the spread between participants. Each stored
posterior keeps every participant's cumulative sums, so the next one adds the new rows and
recomputes exactly, and a researcher can recompute both levels from the export.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from app.protocols.learning import RandomEffects

Vector = NDArray[np.float64]
Matrix = NDArray[np.float64]


@dataclass(frozen=True)
class Sums:
    """A participant's cumulative Z'Z and Z'y (not divided by the noise variance)."""

    ztz: Matrix
    zty: Vector
    rows: int

    def plus(self, ztz: Matrix, zty: Vector, rows: int) -> "Sums":
        return Sums(self.ztz + ztz, self.zty + zty, self.rows + rows)


def deviation_covariance(effects: RandomEffects, treat_options: int = 1) -> Matrix:
    """D: the declared variances of the deviations, baseline block then one effect block
    per treat option."""
    variances = [*effects.baseline_variance, *effects.effect_variance * treat_options]
    return np.diag(np.array(variances, dtype=np.float64))


def _symmetric(matrix: NDArray[np.floating[Any]]) -> Matrix:
    # inv() leaves rounding asymmetry that would grow over many updates.
    return (matrix + matrix.T) / 2


def pooled(
    prior_mean: Vector, prior_covariance: Matrix, sums: Iterable[Sums], d: Matrix, noise: float
) -> tuple[Vector, Matrix]:
    """The posterior of the pooled coefficients theta (every delta_i integrated out)."""
    prior_precision = np.linalg.inv(prior_covariance)
    precision = prior_precision.copy()
    h = prior_precision @ prior_mean
    d_inv = np.linalg.inv(d)
    for s in sums:
        a, b = s.ztz / noise, s.zty / noise
        k = np.linalg.inv(d_inv + a)
        precision += a - a @ k @ a
        h += b - a @ k @ b
    covariance = _symmetric(np.linalg.inv(precision))
    return covariance @ h, covariance


def participant(
    mean: Vector, covariance: Matrix, sums: Sums | None, d: Matrix, noise: float
) -> tuple[Vector, Matrix]:
    """The posterior of a participant's coefficients phi_i from the pooled posterior
    (``mean``, ``covariance``) and their own sums (None: no rows yet)."""
    if sums is None:
        return mean.copy(), covariance + d
    a, b = sums.ztz / noise, sums.zty / noise
    inner: Matrix = np.linalg.inv(d) + a
    k = _symmetric(np.linalg.inv(inner))
    shrink = np.eye(len(mean)) - k @ a
    return mean + k @ (b - a @ mean), _symmetric(shrink @ covariance @ shrink.T + k)
