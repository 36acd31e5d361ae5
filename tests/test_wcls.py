"""The WCLS causal excursion effect estimator (app.analysis) and `kairos analyze mrt`."""

import json
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from scipy import stats
from typer.testing import CliRunner

from app.analysis import WclsResult, load_columns, wcls
from app.analysis.cli import analyze

# Beside the project clone, not inside it: the data is GPL-3 and is not distributed with Kairos.
REFERENCE_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "reference" / "mrt"
REFERENCE_CSV = REFERENCE_DIR / "data_mimicHeartSteps.csv"
REFERENCE_COLUMNS = (
    "userid",
    "logstep_30min",
    "logstep_30min_lag1",
    "logstep_pre30min",
    "is_at_home_or_work",
    "intervention",
    "rand_prob",
    "avail",
)
ONE_CONTROL = ("logstep_pre30min",)
THREE_CONTROLS = ("logstep_pre30min", "logstep_30min_lag1", "is_at_home_or_work")

Columns = dict[str, npt.NDArray[np.float64] | npt.NDArray[np.str_]]


def fit_reference(
    data: Columns,
    controls: Sequence[str],
    numerator_prob: float | None = None,
    *,
    small_sample_correction: bool = True,
) -> WclsResult:
    """The vignette's call: wcls(data_mimicHeartSteps, id = "userid", ..., ~1, controls)."""
    return wcls(
        data,
        id="userid",
        outcome="logstep_30min",
        treatment="intervention",
        rand_prob="rand_prob",
        availability="avail",
        controls=controls,
        numerator_prob=numerator_prob,
        small_sample_correction=small_sample_correction,
    )


@pytest.fixture(scope="module")
def reference() -> Columns:
    if not REFERENCE_CSV.is_file():
        pytest.skip(f"MRTAnalysis reference data not found at {REFERENCE_DIR}")
    return load_columns(REFERENCE_CSV, REFERENCE_COLUMNS)


def shown(value: float, text: str) -> bool:
    """Whether `value` rounds to `text` at the number of decimals `text` shows."""
    decimals = len(text.partition(".")[2])
    return f"{value:.{decimals}f}" == text


# Published MRTAnalysis vignette results (../shared/reference/mrt/README.md): controls,
# numerator probability, estimate, std. error, CI low, CI high, df2, p-value ("" = not given).
PUBLISHED = [
    (ONE_CONTROL, 0.5, "0.157", "0.0622", "0.031", "0.284", 34, "0.0162"),
    (THREE_CONTROLS, 0.5, "0.159", "0.0607", "0.035", "0.283", 32, "0.0135"),
    (ONE_CONTROL, 0.6, "0.157", "0.0622", "0.031", "0.284", 34, "0.0162"),
    (THREE_CONTROLS, 0.6, "0.1585", "0.0605", "", "", 32, ""),
]


@pytest.mark.parametrize(
    ("controls", "numerator", "estimate", "std_error", "ci_low", "ci_high", "df", "p_value"),
    PUBLISHED,
)
def test_reproduces_the_published_mrtanalysis_results(
    reference: Columns,
    controls: tuple[str, ...],
    numerator: float,
    estimate: str,
    std_error: str,
    ci_low: str,
    ci_high: str,
    df: int,
    p_value: str,
) -> None:
    result = fit_reference(reference, controls, numerator)

    (effect,) = result.coefficients
    assert effect.name == "(Intercept)"
    assert shown(effect.estimate, estimate)
    assert shown(effect.std_error, std_error)
    assert not ci_low or shown(effect.ci_low, ci_low)
    assert not ci_high or shown(effect.ci_high, ci_high)
    assert not p_value or shown(effect.p_value, p_value)
    assert effect.df == result.df == df
    assert result.n_participants == 37
    assert result.n_rows == 7770
    assert result.n_decisions + result.n_unavailable == 7770
    assert result.n_missing_outcome == 0


def test_the_small_sample_correction_is_what_matches_the_published_error(
    reference: Columns,
) -> None:
    uncorrected = fit_reference(reference, ONE_CONTROL, 0.5, small_sample_correction=False)

    assert not shown(uncorrected.coefficients[0].std_error, "0.0622")
    assert uncorrected.coefficients[0].std_error < 0.0622


def test_default_numerator_is_the_constant_randomization_probability(
    reference: Columns,
) -> None:
    default = fit_reference(reference, THREE_CONTROLS)
    explicit = fit_reference(reference, THREE_CONTROLS, 0.6)

    assert default.numerator_prob == 0.6
    assert default.coefficients == explicit.coefficients


def simulate_mrt(
    seed: int, participants: int = 400, decisions: int = 40
) -> tuple[dict[str, npt.NDArray[np.float64]], tuple[float, float]]:
    """An MRT whose effect of treatment on the proximal outcome is 0.3 + 0.2 x.

    The randomization probability depends on z, which also drives the outcome and is left out
    of the fitted controls: unweighted least squares would be biased, WCLS is not.
    """
    rng = np.random.default_rng(seed)
    shape = (participants, decisions)
    participant = np.repeat(np.arange(participants, dtype=np.float64), decisions).reshape(shape)
    x = rng.normal(size=shape)
    z = rng.normal(size=shape)
    available = rng.random(shape) < 0.8
    probability = np.clip(1.0 / (1.0 + np.exp(-(0.2 + 1.2 * z))), 0.1, 0.9)
    treated = (rng.random(shape) < probability).astype(np.float64)
    person = rng.normal(scale=0.5, size=(participants, 1))
    outcome = (
        1.0
        + 0.5 * x
        + 0.8 * z
        + person
        + available * treated * (0.3 + 0.2 * x)
        + rng.normal(size=shape)
    )
    columns = {
        "participant_id": participant,
        "y": outcome,
        "x": x,
        "treated": treated,
        "probability": np.where(available, probability, 0.0),
        "available": available.astype(np.float64),
    }
    return {name: values.ravel() for name, values in columns.items()}, (0.3, 0.2)


def test_recovers_a_known_effect_in_a_simulated_trial() -> None:
    data, truth = simulate_mrt(seed=20180501)

    result = wcls(data, outcome="y", moderators=["x"], controls=["x"], numerator_prob=0.5)

    assert [c.name for c in result.coefficients] == ["(Intercept)", "x"]
    assert result.n_participants == 400
    assert result.df == 400 - 2 - 2
    for coefficient, true_value in zip(result.coefficients, truth, strict=True):
        # A deterministic seed: 4 standard errors leaves room for honest sampling error only.
        assert abs(coefficient.estimate - true_value) < 4 * coefficient.std_error
        assert coefficient.ci_low < true_value < coefficient.ci_high
        assert 0 < coefficient.std_error < 0.05
    assert result.coefficient("x").p_value < 1e-3


def test_interval_and_p_value_follow_the_t_distribution_with_the_reported_df() -> None:
    data, _ = simulate_mrt(seed=7, participants=30, decisions=20)

    result = wcls(data, outcome="y", moderators=["x"], numerator_prob=0.5, confidence=0.9)

    for c in result.coefficients:
        assert c.df == 30 - 1 - 2
        half_width = stats.t.ppf(0.95, c.df) * c.std_error
        assert c.ci_high - c.estimate == pytest.approx(half_width)
        assert c.estimate - c.ci_low == pytest.approx(half_width)
        assert c.p_value == pytest.approx(stats.f.sf(c.f_statistic, 1, c.df))


def test_marginal_effect_without_controls_does_not_depend_on_the_numerator() -> None:
    # With constant p and intercept-only g and f, the weights are constant within each arm and
    # the centred design spans the same space as [1, A], so the fit is the difference between
    # the arms' mean outcomes whatever p~ is. With controls the arms' weights change the
    # control fit and the estimate moves slightly (0.1588 vs 0.1585 on the reference data);
    # the estimand is the same, only the finite-sample estimate differs.
    data, _ = simulate_mrt(seed=3)
    data["probability"] = np.where(data["available"] == 1, 0.6, 0.0)
    data["treated"] = np.where(np.random.default_rng(4).random(data["y"].size) < 0.6, 1.0, 0.0) * (
        data["available"] == 1
    )
    used = data["available"] == 1
    treated_mean = data["y"][used & (data["treated"] == 1)].mean()
    untreated_mean = data["y"][used & (data["treated"] == 0)].mean()

    estimates = [
        wcls(data, outcome="y", numerator_prob=numerator).coefficients[0].estimate
        for numerator in (0.2, 0.5, 0.6, 0.9)
    ]

    assert estimates == pytest.approx([treated_mean - untreated_mean] * 4, rel=1e-10)


def test_with_controls_the_numerator_changes_the_estimate(reference: Columns) -> None:
    half = fit_reference(reference, THREE_CONTROLS, 0.5)
    six = fit_reference(reference, THREE_CONTROLS, 0.6)

    assert half.coefficients[0].estimate != pytest.approx(six.coefficients[0].estimate, rel=1e-6)


def test_available_decisions_missing_the_outcome_are_dropped_and_counted() -> None:
    data, _ = simulate_mrt(seed=11, participants=60, decisions=20)
    rng = np.random.default_rng(12)
    missing = (rng.random(data["y"].size) < 0.1) & (data["available"] == 1)
    unavailable_missing = data["available"] == 0
    with_gaps = dict(data)
    with_gaps["y"] = np.where(missing | unavailable_missing, np.nan, data["y"])
    kept = {name: values[~missing] for name, values in data.items()}

    result = wcls(with_gaps, outcome="y", moderators=["x"], numerator_prob=0.5)
    complete = wcls(kept, outcome="y", moderators=["x"], numerator_prob=0.5)

    assert result.n_missing_outcome == int(missing.sum()) > 0
    assert result.n_unavailable == int(unavailable_missing.sum())
    assert result.n_decisions == int((~missing & ~unavailable_missing).sum())
    assert result.coefficients == complete.coefficients


def test_unavailable_decisions_may_have_a_probability_of_zero_and_no_treatment() -> None:
    data, _ = simulate_mrt(seed=5, participants=40, decisions=10)
    data["treated"] = np.where(data["available"] == 1, data["treated"], np.nan)

    result = wcls(data, outcome="y", numerator_prob=0.5)

    assert math.isfinite(result.coefficients[0].estimate)


def test_participants_are_identified_by_text_ids() -> None:
    data, _ = simulate_mrt(seed=5, participants=40, decisions=10)
    text_ids: dict[str, npt.ArrayLike] = dict(data)
    text_ids["participant_id"] = np.array([f"p-{int(i):03d}" for i in data["participant_id"]])

    assert (
        wcls(text_ids, outcome="y", numerator_prob=0.5).coefficients
        == wcls(data, outcome="y", numerator_prob=0.5).coefficients
    )


@pytest.fixture
def small_trial() -> dict[str, npt.NDArray[np.float64]]:
    data, _ = simulate_mrt(seed=9, participants=20, decisions=10)
    return data


@pytest.mark.parametrize(
    ("change", "kwargs", "message"),
    [
        (None, {"outcome": "pain"}, "outcome column 'pain' is not in the data"),
        (None, {"moderators": ["mood"]}, "moderator column 'mood'"),
        (None, {"controls": ["steps"]}, "control column 'steps'"),
        (None, {"availability": "avail"}, "availability column 'avail'"),
        (("treated", 2.0), {}, "treatment column 'treated' must contain only 0 and 1"),
        (("probability", 1.0), {}, "rand_prob column 'probability'.*between 0 and 1"),
        (("probability", 0.0), {}, "rand_prob column 'probability'.*between 0 and 1"),
        (("probability", np.nan), {}, "rand_prob column 'probability' has 1 missing"),
        (("available", 0.5), {}, "availability column 'available' must contain only 0 and 1"),
        (("x", np.nan), {"controls": ["x"]}, "control column 'x' has 1 missing"),
        (("participant_id", np.nan), {}, "id column 'participant_id' has missing"),
        (None, {"numerator_prob": 1.0}, "numerator_prob must lie strictly between 0 and 1"),
        (None, {"rand_prob": 1.5}, r"rand_prob \(1.5\) must lie strictly between"),
        (None, {"confidence": 95.0}, "confidence"),
        (None, {"controls": ["x", "x"]}, "collinear"),
    ],
)
def test_invalid_input_is_a_value_error_naming_the_problem(
    small_trial: dict[str, npt.NDArray[np.float64]],
    change: tuple[str, float] | None,
    kwargs: dict[str, object],
    message: str,
) -> None:
    if change is not None:
        column, value = change
        first_available = int(np.flatnonzero(small_trial["available"] == 1)[0])
        if column == "available":
            first_available = 0
        small_trial[column] = small_trial[column].copy()
        small_trial[column][first_available] = value
    arguments: dict[str, object] = {"outcome": "y", "numerator_prob": 0.5, **kwargs}

    with pytest.raises(ValueError, match=message):
        wcls(small_trial, **arguments)  # type: ignore[arg-type]


def test_a_non_numeric_moderator_is_rejected(
    small_trial: dict[str, npt.NDArray[np.float64]],
) -> None:
    data: dict[str, npt.ArrayLike] = dict(small_trial)
    data["phase"] = np.array(["baseline"] * small_trial["y"].size)

    with pytest.raises(ValueError, match="moderator column 'phase' must be numeric"):
        wcls(data, outcome="y", moderators=["phase"])


def test_fewer_participants_than_parameters_is_rejected() -> None:
    data, _ = simulate_mrt(seed=1, participants=4, decisions=30)

    with pytest.raises(ValueError, match=r"4 participant\(s\).*5 parameters.*at least 6"):
        wcls(data, outcome="y", moderators=["x"], controls=["x", "available"])


def test_load_columns_reads_numbers_text_and_missing_values(tmp_path: Path) -> None:
    path = tmp_path / "decisions.csv"
    path.write_text(
        "participant_id,treated,probability,available,pain\n"
        "a1b2,true,0.6,1,4\n"
        "a1b2,false,0.6,1,NA\n"
        "c3d4,0,0,0,\n",
        encoding="utf-8",
    )

    columns = load_columns(path, ["participant_id", "treated", "pain", "available"])

    assert columns["participant_id"].tolist() == ["a1b2", "a1b2", "c3d4"]
    assert columns["treated"].tolist() == [1.0, 0.0, 0.0]
    assert np.isnan(columns["pain"][1:]).all()
    assert columns["available"].dtype == np.float64
    with pytest.raises(ValueError, match="column 'mood' not found; the columns are participant_id"):
        load_columns(path, ["pain", "mood"])


REFERENCE_OPTIONS = [
    "--id", "userid",
    "--outcome", "logstep_30min",
    "--treatment", "intervention",
    "--rand-prob", "rand_prob",
    "--availability", "avail",
]  # fmt: skip


def test_cli_prints_the_published_table(reference: Columns) -> None:
    options = ["--control", "logstep_pre30min", "--numerator-prob", "0.5"]
    result = CliRunner().invoke(analyze, ["mrt", str(REFERENCE_CSV), *REFERENCE_OPTIONS, *options])

    assert result.exit_code == 0, result.output
    (row,) = [line for line in result.output.splitlines() if line.startswith("(Intercept)")]
    # term, estimate, std.error, 95% CI, F, df1, df2, p-value
    assert row.split() == [
        "(Intercept)", "0.1574", "0.0622", "(0.031,", "0.284)", "6.404", "1", "34", "0.01619",
    ]  # fmt: skip
    assert "37 participants" in result.output


def test_cli_json_with_several_controls(reference: Columns) -> None:
    controls = [option for name in THREE_CONTROLS for option in ("--control", name)]
    result = CliRunner().invoke(
        analyze, ["mrt", str(REFERENCE_CSV), *REFERENCE_OPTIONS, *controls, "--json"]
    )

    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    (effect,) = report["coefficients"]
    assert report["numerator_prob"] == 0.6
    assert report["controls"] == list(THREE_CONTROLS)
    assert shown(effect["estimate"], "0.1585")
    assert shown(effect["std_error"], "0.0605")
    assert effect["df2"] == 32


def test_cli_names_a_missing_column(reference: Columns) -> None:
    result = CliRunner().invoke(
        analyze, ["mrt", str(REFERENCE_CSV), *REFERENCE_OPTIONS, "--moderator", "pain"]
    )

    assert result.exit_code == 2
    assert "column 'pain' not found" in result.output
