"""Smoothing P(treat) with a generalized logistic (``thompson_sampling.smoothing``, as in
Oralytics): its limits, its bounds (a property test), and that the policy logs and uses it."""

import dataclasses
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.decision_rules import learning
from app.decision_rules.evaluation import evaluate
from app.protocols.document import Protocol
from app.protocols.learning import ThompsonSampling
from tests.test_learning_policy import ADAPTIVE, MOMENT, posterior, tailoring


def _config(slope: float, c: float = 1.0) -> ThompsonSampling:
    assert ADAPTIVE.policy.thompson_sampling is not None
    document = ADAPTIVE.policy.thompson_sampling.model_dump()
    return ThompsonSampling.model_validate({**document, "smoothing": {"slope": slope, "c": c}})


def _protocol(slope: float) -> Protocol:
    document = ADAPTIVE.model_dump()
    document["policy"]["thompson_sampling"]["smoothing"] = {"slope": slope}
    return Protocol.model_validate(document)


def test_without_uncertainty_it_is_the_logistic_itself() -> None:
    config = _config(slope=2.0, c=5.0)
    # better: lower, threshold 0: an effect of -1 is an advantage of 1.
    expected = 0.2 + 0.6 / (1 + 5.0 * math.exp(-2.0))
    assert learning.smoothed_probability(config, -1.0, 0.0, 0.2, 0.8) == pytest.approx(expected)


def test_no_advantage_gives_the_middle_of_the_bounds() -> None:
    config = _config(slope=1.0)
    assert learning.smoothed_probability(config, 0.0, 4.0, 0.2, 0.8) == pytest.approx(0.5)


def test_a_steep_slope_approaches_the_posterior_probability() -> None:
    config = _config(slope=500.0)
    for mean, variance in ((-0.3, 0.25), (0.5, 1.0), (-2.0, 0.5)):
        raw = learning.probability_beyond(config, mean, variance)
        smoothed = learning.smoothed_probability(config, mean, variance, 0.2, 0.8)
        assert smoothed == pytest.approx(0.2 + 0.6 * raw, abs=2e-3)


def test_the_expectation_matches_a_monte_carlo_average() -> None:
    config = _config(slope=1.5, c=2.0)
    rng = np.random.default_rng(0)
    draws = rng.normal(-0.4, 0.8, size=400_000)  # effects; advantage = -effect
    expected = 0.1 + 0.8 * float(np.mean(1 / (1 + 2.0 * np.exp(-1.5 * -draws))))
    got = learning.smoothed_probability(config, -0.4, 0.64, 0.1, 0.9)
    assert got == pytest.approx(expected, abs=2e-3)


@settings(max_examples=300, deadline=None)
@given(
    mean=st.floats(-1e3, 1e3),
    variance=st.floats(0, 1e4),
    slope=st.floats(1e-3, 1e3),
    c=st.floats(1e-3, 1e3),
    bounds=st.tuples(st.floats(0, 1), st.floats(0, 1)).map(sorted),
)
def test_smoothed_probabilities_stay_within_the_bounds_and_grow_with_the_advantage(
    mean: float, variance: float, slope: float, c: float, bounds: list[float]
) -> None:
    low, high = bounds
    config = _config(slope=slope, c=c)
    p = learning.smoothed_probability(config, mean, variance, low, high)
    assert low - 1e-12 <= p <= high + 1e-12
    # A lower effect is a larger advantage (better: lower): never a smaller probability.
    assert learning.smoothed_probability(config, mean - 1.0, variance, low, high) >= p - 1e-9


def test_the_policy_logs_and_uses_the_smoothed_probability() -> None:
    protocol = _protocol(slope=1.0)
    cov = np.diag([1.0, 1.0, 1.0, 0.01, 0.001, 0.001])
    moment = dataclasses.replace(MOMENT, posterior=posterior([0, 0, 0, -0.5, 0, 0], cov))
    evaluation = evaluate(protocol, moment, tailoring())
    record = evaluation.learning
    assert record is not None
    assert not record["fallback"]
    # Effect about -0.5: the unsmoothed posterior probability is near 1, the smoothed one
    # far from the upper bound (0.8).
    assert record["probability_unclipped"] > 0.95
    assert 0.5 < record["probability_smoothed"] < 0.7
    assert evaluation.probabilities["pain_acceptance"] == pytest.approx(
        record["probability_smoothed"]
    )
