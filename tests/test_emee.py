"""EMEE, the causal excursion effect on a binary outcome (log relative risk): the published
MRTAnalysis `emee()` results on its data_binary data set (skipped when the reference data is
absent), `kairos analyze mrt --outcome-type binary`, the API, and refusals that name the
reason."""

import json
import uuid
from datetime import timedelta

import numpy as np
import numpy.typing as npt
import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from app.analysis import load_columns
from app.analysis.cli import analyze
from app.analysis.emee import emee
from app.analysis.wcls import WclsResult
from app.decision_rules.models import Decision
from app.engagement.models import EngagementEvent
from app.staff.models import Role
from tests.conftest import World
from tests.test_decisions_export import _simulated_trial
from tests.test_wcls import REFERENCE_DIR, shown

BINARY_CSV = REFERENCE_DIR / "data_binary.csv"
COLUMNS = ("userid", "time_var1", "time_var2", "Y", "A", "avail", "rand_prob")
Columns = dict[str, npt.NDArray[np.float64] | npt.NDArray[np.str_]]


@pytest.fixture(scope="module")
def binary() -> Columns:
    if not BINARY_CSV.is_file():
        pytest.skip(f"MRTAnalysis reference data not found at {REFERENCE_DIR}")
    return load_columns(BINARY_CSV, COLUMNS)


def _fit(data: Columns, moderators: tuple[str, ...] = (), **options: object) -> WclsResult:
    """The vignette's call: emee(data_binary, id = "userid", outcome = "Y", treatment = "A",
    rand_prob = "rand_prob", moderator_formula, control_formula = ~ time_var1 + time_var2,
    availability = "avail")."""
    return emee(
        data,
        id="userid",
        outcome="Y",
        treatment="A",
        rand_prob="rand_prob",
        availability="avail",
        moderators=moderators,
        controls=("time_var1", "time_var2"),
        **options,  # type: ignore[arg-type]
    )


# moderator formula, term, estimate, std. error, CI low, CI high, t, df, p-value, as printed
# by summary(fit4) and summary(fit5) in the MRTAnalysis vignette (README beside the data).
PUBLISHED = [
    ((), "(Intercept)", "0.341", "0.05", "0.241", "0.44", "6.81", 96, "8.54e-10"),
    (("time_var1",), "(Intercept)", "0.0811", "0.1316", "-0.180", "0.342", "0.616", 95, "0.5391"),
    (("time_var1",), "time_var1", "0.4293", "0.1905", "0.051", "0.808", "2.253", 95, "0.0266"),
]


@pytest.mark.parametrize(
    ("moderators", "term", "estimate", "se", "low", "high", "t", "df", "p"), PUBLISHED
)
def test_reproduces_the_published_emee_results(
    binary: Columns,
    moderators: tuple[str, ...],
    term: str,
    estimate: str,
    se: str,
    low: str,
    high: str,
    t: str,
    df: int,
    p: str,
) -> None:
    c = _fit(binary, moderators).coefficient(term)
    assert shown(c.estimate, estimate)
    assert shown(c.std_error, se)
    assert shown(c.ci_low, low)
    assert shown(c.ci_high, high)
    assert shown(c.t_statistic, t)
    assert c.df == df
    if "e" in p:
        mantissa = p.split("e")[0]
        assert f"{c.p_value:.{len(mantissa.partition('.')[2])}e}" == p
    else:
        assert shown(c.p_value, p)


def test_matches_the_package_tests_to_more_digits(binary: Columns) -> None:
    fit = _fit(binary, ("time_var1",))
    assert [round(c.estimate, 8) for c in fit.coefficients] == [0.08114495, 0.42931332]
    assert [round(c.std_error, 7) for c in fit.coefficients] == [0.1316436, 0.1905454]
    uncorrected = _fit(binary, ("time_var1",), small_sample_correction=False)
    assert [round(c.std_error, 7) for c in uncorrected.coefficients] == [0.1301265, 0.1882975]


def test_linear_combinations_from_the_covariance(binary: Columns) -> None:
    # summary(fit5, lincomb = ...): (Intercept) + 0.5 time_var1, and (Intercept) + time_var1.
    fit = _fit(binary, ("time_var1",))
    beta = np.array([c.estimate for c in fit.coefficients])
    for weights, estimate, se in (([1, 0.5], "0.2958", "0.0569"), ([1, 1], "0.5105", "0.0854")):
        w = np.array(weights, dtype=float)
        assert shown(float(w @ beta), estimate)
        assert shown(float(np.sqrt(w @ fit.covariance @ w)), se)


def test_the_numerator_probability_can_be_the_randomization_probability(binary: Columns) -> None:
    # README: with p~ = p the marginal estimate becomes 0.3355 (SE 0.0500).
    fit = _fit(binary, numerator_prob=None)
    effect = fit.coefficient("(Intercept)")
    assert fit.numerator_prob == 0.5  # p varies (0.3, 0.5, 0.7): MRTAnalysis's 0.5 rule
    assert shown(effect.estimate, "0.341")


def test_the_cli_runs_emee(binary: Columns) -> None:
    result = CliRunner().invoke(
        analyze,
        [
            "mrt",
            str(BINARY_CSV),
            "--outcome",
            "Y",
            "--id",
            "userid",
            "--treatment",
            "A",
            "--rand-prob",
            "rand_prob",
            "--availability",
            "avail",
            "--control",
            "time_var1",
            "--control",
            "time_var2",
            "--outcome-type",
            "binary",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["method"] == "emee"
    assert report["scale"] == "log relative risk"
    assert report["numerator_prob"] == 0.5
    assert shown(report["coefficients"][0]["estimate"], "0.341")
    table = CliRunner().invoke(
        analyze,
        ["mrt", str(BINARY_CSV), "--outcome", "Y", "--id", "userid", "--treatment", "A",
         "--rand-prob", "rand_prob", "--availability", "avail", "--outcome-type", "binary"],
    )  # fmt: skip
    assert table.exit_code == 0, table.output
    assert "EMEE, log relative risk" in table.output


def test_a_non_binary_or_constant_outcome_is_refused() -> None:
    rng = np.random.default_rng(1)
    n = 400
    data = {
        "participant_id": np.repeat(np.arange(20), 20),
        "treated": (rng.random(n) < 0.5).astype(float),
        "probability": np.full(n, 0.5),
        "available": np.ones(n),
        "score": rng.normal(size=n),
        "never": np.zeros(n),
    }
    with pytest.raises(ValueError, match="must contain only 0 and 1"):
        emee(data, outcome="score")
    with pytest.raises(ValueError, match="always 0"):
        emee(data, outcome="never")


def test_recovers_a_known_relative_risk_in_a_simulated_trial() -> None:
    rng = np.random.default_rng(7)
    users, times = 200, 40
    n = users * times
    a = (rng.random(n) < 0.4).astype(float)
    y = (rng.random(n) < np.exp(np.log(0.2) + np.log(1.5) * a)).astype(float)
    data = {
        "participant_id": np.repeat(np.arange(users), times),
        "treated": a,
        "probability": np.full(n, 0.4),
        "available": np.ones(n),
        "y": y,
    }
    effect = emee(data, outcome="y").coefficient("(Intercept)")
    assert effect.ci_low < np.log(1.5) < effect.ci_high


def test_the_api_analyses_a_binary_engagement_outcome(world: World) -> None:
    trial = _simulated_trial(world, effect=0.0)
    rng = np.random.default_rng(3)
    with world.session_factory() as session:
        decisions = session.execute(
            sa.select(Decision.participant_id, Decision.decided_at, Decision.option_id)
        ).all()
        for pid, at, option in decisions:
            # The exercise is done after 60% of prompts and 20% of the other decisions.
            if rng.random() < (0.6 if option == "pain_acceptance" else 0.2):
                session.add(
                    EngagementEvent(
                        participant_id=pid,
                        study_id=uuid.UUID(trial.study_id),
                        client_id=uuid.uuid4().hex,
                        kind="exercise_completed",
                        occurred_at=at + timedelta(minutes=30),
                        received_at=at + timedelta(minutes=31),
                    )
                )
        session.commit()
    url = f"/v1/studies/{trial.study_id}/analyses/mrt"
    researcher = world.staff(Role.researcher)
    body = {"outcome": "exercise_done", "option": "pain_acceptance", "outcome_type": "binary"}
    response = world.client.post(url, json=body, headers=researcher)
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["method"] == "emee"
    assert result["numerator_prob"] == 0.5
    effect = result["coefficients"][0]
    assert effect["ci_low"] < np.log(3.0) < effect["ci_high"]
    assert effect["ci_low"] > 0
    continuous = world.client.post(
        url, json={**body, "outcome": "next_interference"}, headers=researcher
    )
    assert continuous.status_code == 422
    assert "must contain only 0 and 1" in continuous.json()["detail"]
