"""Causal excursion effects from a micro-randomized trial by weighted and centred least squares.

The estimator of Boruvka, Almirall, Witkiewitz and Murphy (2018), "Assessing time-varying
causal effect moderation in mobile health", JASA 113(523), as implemented by `wcls()` in the
R package MRTAnalysis (Qian): at every available decision point of every participant,

    Y = g(H)'alpha + (A - p~) f(H)'beta + error,

fitted by least squares with weight W = (p~/p)^A ((1-p~)/(1-p))^(1-A), where p is the
randomization probability actually used and p~ the numerator probability. beta is the causal
excursion effect: f(H)'beta is the effect of delivering the intervention option rather than not
on the proximal outcome, marginal over everything in H except the moderators f. The variance is
the participant-clustered sandwich with the Mancl and DeRouen (2001) small-sample correction,
and inference uses F(1, n - p - q) (equivalently t with n - p - q degrees of freedom), n the
number of participants, p = dim f and q = dim g, both counting the intercept.
"""

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

INTERCEPT = "(Intercept)"

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class EffectCoefficient:
    """One coefficient of the causal excursion effect, f(H)'beta, with its inference."""

    name: str
    estimate: float
    std_error: float
    ci_low: float
    ci_high: float
    t_statistic: float
    df: int
    p_value: float

    @property
    def f_statistic(self) -> float:
        """The statistic of the F(1, df) test that MRTAnalysis reports (t squared)."""
        return self.t_statistic**2


@dataclass(frozen=True)
class WclsResult:
    """The fitted causal excursion effect of `wcls()`."""

    coefficients: tuple[EffectCoefficient, ...]
    moderators: tuple[str, ...]
    controls: tuple[str, ...]
    numerator_prob: float
    confidence: float
    small_sample_correction: bool
    n_participants: int
    n_decisions: int
    n_rows: int
    n_unavailable: int
    n_missing_outcome: int
    df: int
    covariance: FloatArray = field(repr=False, compare=False)

    def coefficient(self, name: str) -> EffectCoefficient:
        """The coefficient of moderator `name` (the marginal effect is "(Intercept)")."""
        for coefficient in self.coefficients:
            if coefficient.name == name:
                return coefficient
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable summary (no covariance matrix)."""
        return {
            "coefficients": [
                {
                    "name": c.name,
                    "estimate": c.estimate,
                    "std_error": c.std_error,
                    "ci_low": c.ci_low,
                    "ci_high": c.ci_high,
                    "t_statistic": c.t_statistic,
                    "f_statistic": c.f_statistic,
                    "df1": 1,
                    "df2": c.df,
                    "p_value": c.p_value,
                }
                for c in self.coefficients
            ],
            "moderators": list(self.moderators),
            "controls": list(self.controls),
            "numerator_prob": self.numerator_prob,
            "confidence": self.confidence,
            "small_sample_correction": self.small_sample_correction,
            "n_participants": self.n_participants,
            "n_decisions": self.n_decisions,
            "n_rows": self.n_rows,
            "n_unavailable": self.n_unavailable,
            "n_missing_outcome": self.n_missing_outcome,
            "df": self.df,
        }


def _column(data: Mapping[str, npt.ArrayLike], name: str, role: str) -> npt.NDArray[Any]:
    if name not in data:
        raise ValueError(f"{role} column {name!r} is not in the data")
    values = np.asarray(data[name])
    if values.ndim != 1:
        raise ValueError(f"{role} column {name!r} must be one-dimensional")
    return values


def _numeric(values: npt.NDArray[Any], name: str, role: str) -> FloatArray:
    try:
        return np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{role} column {name!r} must be numeric") from None


def _require_finite(values: FloatArray, name: str, role: str) -> None:
    bad = ~np.isfinite(values)
    if bad.any():
        raise ValueError(
            f"{role} column {name!r} has {int(bad.sum())} missing or infinite value(s) "
            "at available decision points"
        )


def _require_probability(values: FloatArray, name: str) -> None:
    if not np.all((values > 0) & (values < 1)):
        raise ValueError(f"{name} must lie strictly between 0 and 1 at available decision points")


def wcls(
    data: Mapping[str, npt.ArrayLike],
    *,
    outcome: str,
    id: str = "participant_id",  # shadows the builtin: it is the name MRTAnalysis uses
    treatment: str = "treated",
    rand_prob: str | float = "probability",
    availability: str | None = "available",
    moderators: Sequence[str] = (),
    controls: Sequence[str] = (),
    numerator_prob: float | None = None,
    confidence: float = 0.95,
    small_sample_correction: bool = True,
) -> WclsResult:
    """Estimate the causal excursion effect of treatment on outcome by WCLS.

    `data` maps column names to equally long one-dimensional arrays, one element per decision
    point (long format), e.g. from `load_columns()`. `rand_prob` is a column name or a constant
    randomization probability; `availability` a 0/1 column, or None when every decision point
    was available. `moderators` are the variables in f besides the intercept (none: the fully
    marginal effect); `controls` those in g besides the intercept. Both enter linearly.

    `numerator_prob` is the constant p~; it must depend on the moderators only, and a constant
    always qualifies. None follows MRTAnalysis: the randomization probability when that is
    constant over the available decision points, otherwise 0.5.

    Unavailable decision points carry zero weight and are left out; available ones without an
    outcome are dropped and counted in `n_missing_outcome` (the estimate is then valid when
    the outcome is missing at random given the controls and moderators). Participants with no
    remaining decision point do not count towards `n_participants`.

    With `small_sample_correction` (the default) each participant's residuals are multiplied by
    (I - H_i)^-1, H_i the participant's block of the weighted hat matrix (Mancl and DeRouen
    2001). MRTAnalysis applies this only for at most 50 participants; pass False to reproduce
    its output for larger trials.

    Raises ValueError, naming the column, for a missing or non-numeric column, availability
    or treatment other than 0/1, probabilities outside (0, 1), missing covariates at available
    decision points, collinear controls or moderators, or too few participants (fewer than
    p + q + 1).
    """
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
    theta, covariance = _fit(
        prepared.design,
        prepared.y,
        prepared.weight,
        prepared.cluster,
        prepared.n_participants,
        small_sample_correction,
    )
    return result(prepared, theta, covariance, confidence, small_sample_correction)


@dataclass(frozen=True)
class Prepared:
    """The available decision points with an outcome, checked and ready to fit: outcome y,
    treatment a, randomization and numerator probabilities, the weights, the control (g)
    and moderator (f) design and the design [g, (a - p~) f], participant clusters."""

    y: FloatArray
    a: FloatArray
    p: FloatArray
    numerator: float
    weight: FloatArray
    g: FloatArray
    f: FloatArray
    design: FloatArray
    cluster: npt.NDArray[np.intp]
    n_participants: int
    df: int
    moderators: tuple[str, ...]
    controls: tuple[str, ...]
    n_rows: int
    n_unavailable: int
    n_missing_outcome: int


def prepare(
    data: Mapping[str, npt.ArrayLike],
    *,
    outcome: str,
    id: str,
    treatment: str,
    rand_prob: str | float,
    availability: str | None,
    moderators: Sequence[str],
    controls: Sequence[str],
    numerator_prob: float | None,
    confidence: float,
) -> Prepared:
    """The checks and design shared by WCLS and EMEE (see ``wcls`` for what is refused)."""
    if not 0 < confidence < 1:
        raise ValueError("confidence must lie strictly between 0 and 1")
    moderators = tuple(moderators)
    controls = tuple(controls)

    ids = _column(data, id, "id")
    outcome_all = _numeric(_column(data, outcome, "outcome"), outcome, "outcome")
    treatment_raw = _column(data, treatment, "treatment")
    rand_prob_raw = (
        None if not isinstance(rand_prob, str) else _column(data, rand_prob, "rand_prob")
    )
    availability_raw = None if availability is None else _column(data, availability, "availability")
    moderator_raw = [_column(data, name, "moderator") for name in moderators]
    control_raw = [_column(data, name, "control") for name in controls]

    n_rows = len(ids)
    named = [
        (outcome, outcome_all),
        (treatment, treatment_raw),
        *zip(moderators, moderator_raw, strict=True),
        *zip(controls, control_raw, strict=True),
    ]
    if rand_prob_raw is not None:
        named.append((str(rand_prob), rand_prob_raw))
    if availability_raw is not None:
        named.append((str(availability), availability_raw))
    for name, values in named:
        if len(values) != n_rows:
            raise ValueError(
                f"column {name!r} has {len(values)} rows, id column {id!r} has {n_rows}"
            )

    if availability_raw is None:
        available = np.ones(n_rows, dtype=bool)
    else:
        availability_values = _numeric(availability_raw, str(availability), "availability")
        if not np.all(np.isin(availability_values, (0.0, 1.0))):
            raise ValueError(f"availability column {availability!r} must contain only 0 and 1")
        available = availability_values == 1.0

    observed = available & ~np.isnan(outcome_all)
    n_unavailable = int((~available).sum())
    n_missing_outcome = int((available & np.isnan(outcome_all)).sum())
    rows = np.flatnonzero(observed)
    if rows.size == 0:
        raise ValueError(f"no available decision point has an observed outcome {outcome!r}")

    y = outcome_all[rows]
    _require_finite(y, outcome, "outcome")

    a = _numeric(treatment_raw[rows], treatment, "treatment")
    if not np.all(np.isin(a, (0.0, 1.0))):
        raise ValueError(
            f"treatment column {treatment!r} must contain only 0 and 1 at available decision points"
        )

    if rand_prob_raw is None:
        p = np.full(rows.size, float(rand_prob))
        rand_prob_label = f"rand_prob ({rand_prob})"
    else:
        p = _numeric(rand_prob_raw[rows], str(rand_prob), "rand_prob")
        _require_finite(p, str(rand_prob), "rand_prob")
        rand_prob_label = f"rand_prob column {rand_prob!r}"
    _require_probability(p, rand_prob_label)

    if numerator_prob is None:
        numerator = float(p[0]) if np.all(p == p[0]) else 0.5
    else:
        numerator = float(numerator_prob)
        if not 0 < numerator < 1:
            raise ValueError("numerator_prob must lie strictly between 0 and 1")

    def covariates(raw: list[npt.NDArray[Any]], names: tuple[str, ...], role: str) -> FloatArray:
        matrix = np.ones((rows.size, len(names) + 1))
        for j, (values, name) in enumerate(zip(raw, names, strict=True), start=1):
            matrix[:, j] = _numeric(values[rows], name, role)
            _require_finite(matrix[:, j], name, role)
        return matrix

    g = covariates(control_raw, controls, "control")
    f = covariates(moderator_raw, moderators, "moderator")

    id_values = ids[rows]
    if id_values.dtype.kind == "f" and np.isnan(id_values).any():
        raise ValueError(f"id column {id!r} has missing values at available decision points")
    if id_values.dtype.kind in "US" and (id_values == "").any():
        raise ValueError(f"id column {id!r} has empty values at available decision points")
    _, cluster = np.unique(id_values, return_inverse=True)
    n_participants = int(cluster.max()) + 1

    q, dim_f = g.shape[1], f.shape[1]
    df = n_participants - q - dim_f
    if df < 1:
        raise ValueError(
            f"{n_participants} participant(s) with observed outcomes at available decision points "
            f"are too few for {q + dim_f} parameters ({q} control, {dim_f} moderator terms, "
            f"each counting its intercept); at least {q + dim_f + 1} are needed"
        )

    weight = np.where(a == 1.0, numerator / p, (1.0 - numerator) / (1.0 - p))
    design = np.hstack([g, (a - numerator)[:, None] * f])

    if np.linalg.matrix_rank(design * np.sqrt(weight)[:, None]) < design.shape[1]:
        raise ValueError(
            "the controls and moderators are collinear (or constant) at the available decision "
            f"points; drop one of: {', '.join((*controls, *moderators)) or 'none'}"
        )

    return Prepared(
        y=y,
        a=a,
        p=p,
        numerator=numerator,
        weight=weight,
        g=g,
        f=f,
        design=design,
        cluster=cluster,
        n_participants=n_participants,
        df=df,
        moderators=moderators,
        controls=controls,
        n_rows=n_rows,
        n_unavailable=n_unavailable,
        n_missing_outcome=n_missing_outcome,
    )


def result(
    prepared: Prepared,
    theta: FloatArray,
    covariance: FloatArray,
    confidence: float,
    small_sample_correction: bool,
) -> WclsResult:
    """The effect coefficients (after the q control coefficients of ``theta``) with t
    inference on ``prepared.df`` degrees of freedom."""
    q, df = prepared.g.shape[1], prepared.df
    moderators = prepared.moderators

    # Imported here: scipy.stats adds some 75 MiB to every process that imports this
    # module (the API does, for its routes), and only an analysis needs it.
    from scipy import stats

    crit = float(stats.t.ppf((1.0 + confidence) / 2.0, df))
    coefficients = []
    for j, name in enumerate((INTERCEPT, *moderators)):
        estimate = float(theta[q + j])
        std_error = math.sqrt(float(covariance[q + j, q + j]))
        t_statistic = estimate / std_error if std_error > 0 else math.copysign(math.inf, estimate)
        coefficients.append(
            EffectCoefficient(
                name=name,
                estimate=estimate,
                std_error=std_error,
                ci_low=estimate - crit * std_error,
                ci_high=estimate + crit * std_error,
                t_statistic=t_statistic,
                df=df,
                # F(1, df) on t^2 is the two-sided t test; t.sf keeps precision for tiny p.
                p_value=float(2.0 * stats.t.sf(abs(t_statistic), df)),
            )
        )

    return WclsResult(
        coefficients=tuple(coefficients),
        moderators=moderators,
        controls=prepared.controls,
        numerator_prob=prepared.numerator,
        confidence=confidence,
        small_sample_correction=small_sample_correction,
        n_participants=prepared.n_participants,
        n_decisions=len(prepared.y),
        n_rows=prepared.n_rows,
        n_unavailable=prepared.n_unavailable,
        n_missing_outcome=prepared.n_missing_outcome,
        df=df,
        covariance=covariance[q:, q:].copy(),
    )


def _fit(
    design: FloatArray,
    y: FloatArray,
    weight: FloatArray,
    cluster: npt.NDArray[np.intp],
    n_clusters: int,
    small_sample_correction: bool,
) -> tuple[FloatArray, FloatArray]:
    """Weighted least squares with the participant-clustered sandwich covariance."""
    weighted_design_t = design.T * weight
    bread = weighted_design_t @ design
    bread_inv = np.linalg.inv(bread)
    theta = bread_inv @ (weighted_design_t @ y)
    residual = y - design @ theta

    dim = design.shape[1]
    identity = np.eye(dim)
    meat = np.zeros((dim, dim))
    order = np.argsort(cluster, kind="stable")
    starts = np.searchsorted(cluster[order], np.arange(n_clusters))
    for rows in np.split(order, starts[1:]):
        x_i = design[rows]
        xtw_i = weighted_design_t[:, rows]
        score = xtw_i @ residual[rows]
        if small_sample_correction:
            # (I - H_i)^-1 r_i with H_i = X_i B^-1 X_i' W_i, by the push-through identity
            # (I - U V)^-1 = I + U (I - V U)^-1 V: a dim x dim solve instead of a solve of
            # the size of the participant's decision count.
            try:
                correction = np.linalg.solve(
                    identity - bread_inv @ (xtw_i @ x_i), bread_inv @ score
                )
            except np.linalg.LinAlgError:
                raise ValueError(
                    "a participant has leverage 1 (their decisions alone determine some "
                    "coefficient); the small-sample correction is undefined"
                ) from None
            score = score + xtw_i @ (x_i @ correction)
        meat += np.outer(score, score)
    return theta, bread_inv @ meat @ bread_inv
