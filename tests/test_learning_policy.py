"""The Thompson-sampling policy without the database: the posterior update against the
closed form, P(treat) and its clipping (a property test), the fallbacks, and that the
engine's exclusions still apply to the learned probabilities."""

import dataclasses
import math
from datetime import UTC, datetime
from typing import Any

import cel
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.decision_rules import learning
from app.decision_rules.evaluation import builtins, evaluate
from app.decision_rules.learning import LearningRow, Posterior
from app.decision_rules.moment import Moment
from app.decision_rules.policies import policy_for
from app.decision_rules.policies.thompson_sampling import NO_POSTERIOR, ThompsonSamplingPolicy
from app.decision_rules.tailoring import Tailoring, finish
from app.protocols.document import Protocol
from app.protocols.example_files import CHRONIC_PAIN_ADAPTIVE, example_text
from app.protocols.learning import ThompsonSampling
from app.protocols.loading import parse_protocol
from app.protocols.problems import ProtocolInvalid

ADAPTIVE: Protocol = parse_protocol(example_text(CHRONIC_PAIN_ADAPTIVE))
CONFIG = ADAPTIVE.policy.thompson_sampling
assert CONFIG is not None
# A Wednesday morning in stage 1 with interference high enough for the learned rule.
MOMENT = Moment("morning", datetime(2026, 3, 4, 9, 0, tzinfo=UTC), {}, stage="stage_1")
VALUES = {
    "interference_today": 6.0,
    "acceptance_today": 4.0,
    "steps_3h": 900,
    "sleep_last_night": 480,
    "prompts_today": 0,
    "days_enrolled": 5,
    "pain_mean_7d": 5.0,
    "pain_baseline": 6.0,
}


def tailoring(protocol: Protocol = ADAPTIVE, **changes: Any) -> Tailoring:
    return finish(protocol, {**VALUES, **changes})


def posterior(
    mean: list[float], covariance: np.ndarray | None = None, rows: int = 500
) -> Posterior:
    cov = np.eye(len(mean)) * 0.01 if covariance is None else covariance
    return Posterior("p-1", np.array(mean, dtype=np.float64), cov, rows_total=rows)


def _rows(rng: np.random.Generator, n: int) -> list[LearningRow]:
    rows = []
    for _ in range(n):
        features = {
            "interference_today": float(rng.uniform(0, 10)),
            "acceptance_today": float(rng.uniform(0, 10)),
        }
        pi = float(rng.uniform(0.2, 0.8))
        treated = bool(rng.random() < pi)
        effect = -1.0 + 0.1 * features["acceptance_today"]
        outcome = 1.0 + 0.8 * features["interference_today"] + treated * effect
        rows.append(LearningRow(features, pi, treated, outcome + float(rng.normal(0, 1.5))))
    return rows


def test_the_posterior_update_is_the_closed_form() -> None:
    """Sequential updates (as the worker makes them) equal the conjugate normal posterior
    computed at once from the prior and every row, written out independently here."""
    assert CONFIG is not None
    rows = _rows(np.random.default_rng(7), 120)
    mean, cov = learning.prior(CONFIG)
    for chunk in (rows[:50], rows[50:51], [], rows[51:]):
        design = [learning.design_row(CONFIG, r) for r in chunk]
        outcomes = [r.outcome for r in chunk]
        mean, cov = learning.update(mean, cov, design, outcomes, CONFIG.noise_variance)

    m0 = np.array([1.0, 0.8, -0.1, 0.0, 0.0, 0.0])
    s0 = np.diag([4.0, 0.25, 0.25, 1.0, 0.04, 0.04])
    x = np.array(
        [[1.0, r.features["interference_today"], r.features["acceptance_today"]] for r in rows]
    )
    a_centred = np.array([float(r.treated) - r.pi for r in rows])
    z = np.hstack([x, a_centred[:, None] * x])
    y = np.array([r.outcome for r in rows])
    sigma2 = 2.25
    precision = np.linalg.inv(s0) + z.T @ z / sigma2
    expected_cov = np.linalg.inv(precision)
    expected_mean = expected_cov @ (np.linalg.inv(s0) @ m0 + z.T @ y / sigma2)
    np.testing.assert_allclose(mean, expected_mean, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(cov, expected_cov, rtol=1e-9, atol=1e-14)
    # 120 rows recover the effect's sign where it matters: negative (helps) at low acceptance.
    effect, _ = learning.effect(CONFIG, Posterior("x", mean, cov, 120), np.array([1.0, 6.0, 1.0]))
    assert effect < 0


def test_p_treat_is_the_posterior_probability_of_an_improvement() -> None:
    assert CONFIG is not None
    # Effect mean -0.5 at any features (intercept only), variance 0.25: P(effect < 0).
    cov = np.diag([0.01, 0.01, 0.01, 0.25, 0.0, 0.0])
    record = ThompsonSamplingPolicy().propose(
        ADAPTIVE,
        dataclasses.replace(MOMENT, posterior=posterior([0, 0, 0, -0.5, 0, 0], cov)),
        _context(tailoring()),
    )
    assert record is not None
    assert record.learning is not None
    expected = 0.5 * math.erfc(-(0.5 / 0.5) / math.sqrt(2))  # Phi(1)
    assert record.learning["effect_mean"] == pytest.approx(-0.5)
    assert record.learning["effect_variance"] == pytest.approx(0.25)
    assert record.learning["probability_unclipped"] == pytest.approx(expected)
    assert record.learning["probability_clipped"] == 0.8  # Phi(1) = 0.84, clipped
    assert record.probabilities == {"pain_acceptance": 0.8, "nothing": pytest.approx(0.2)}
    assert record.rule_id == "acceptance_learned"
    assert record.learning["features"] == {"interference_today": 6.0, "acceptance_today": 4.0}
    assert not record.learning["fallback"]


def _context(values: Tailoring, moment: Moment = MOMENT) -> cel.Context:
    return cel.Context({**values.present(), **builtins(moment)})


def test_the_protocol_chooses_the_learning_policy_and_other_rules_are_untouched() -> None:
    assert isinstance(policy_for(ADAPTIVE), ThompsonSamplingPolicy)
    # Low interference: the learned rule does not hold; the rule table decides as ever.
    evaluation = evaluate(ADAPTIVE, MOMENT, tailoring(interference_today=1.0))
    assert evaluation.rule_id == "otherwise"
    assert evaluation.learning is None


@settings(max_examples=300, deadline=None)
@given(
    effect=st.lists(st.floats(-50, 50), min_size=3, max_size=3),
    scale=st.floats(0, 100),
    interference=st.floats(4, 10),
    acceptance=st.floats(0, 10),
    bounds=st.one_of(
        st.none(),
        st.tuples(st.floats(0, 1), st.floats(0, 1)).map(lambda t: (min(t), max(t))),
    ),
)
def test_clipping_bounds_are_never_violated(
    effect: list[float],
    scale: float,
    interference: float,
    acceptance: float,
    bounds: tuple[float, float] | None,
) -> None:
    """Whatever the posterior and the features, the probabilities the draw uses lie within
    the policy's probability_bounds and the learning policy's own, and sum to 1."""
    document = ADAPTIVE.model_dump()
    learned = document["policy"]["thompson_sampling"]
    learned["probability_bounds"] = (
        None if bounds is None else dict(zip(("min", "max"), bounds, strict=True))
    )
    protocol = Protocol.model_validate(document)
    cov = np.diag([1.0, 1.0, 1.0, scale, scale / 10, scale / 10])
    moment = dataclasses.replace(MOMENT, posterior=posterior([0, 0, 0, *effect], cov))
    evaluation = evaluate(
        protocol, moment, tailoring(interference_today=interference, acceptance_today=acceptance)
    )
    assert evaluation.learning is not None
    assert not evaluation.learning["fallback"]
    p = evaluation.probabilities
    assert sum(p.values()) == pytest.approx(1.0)
    policy_bounds = protocol.policy.probability_bounds
    low, high = bounds if bounds is not None else (policy_bounds.min, policy_bounds.max)
    if p["pain_acceptance"] > 0 and p["nothing"] > 0:
        for value in p.values():
            assert policy_bounds.min - 1e-12 <= value <= policy_bounds.max + 1e-12
    # The learning policy's clipping, then the policy's bounds (narrower of the two).
    treat = evaluation.learning["probability_clipped"]
    assert low <= treat <= high
    expected = min(max(treat, policy_bounds.min), policy_bounds.max)
    if 0 < treat < 1:
        assert p["pain_acceptance"] == pytest.approx(expected, abs=1e-9)


def test_before_the_first_update_the_fallback_probability_is_used() -> None:
    evaluation = evaluate(ADAPTIVE, MOMENT, tailoring())
    assert evaluation.learning is not None
    assert evaluation.learning["fallback"] is True
    assert evaluation.learning["fallback_reason"] == NO_POSTERIOR
    assert evaluation.learning["posterior_id"] is None
    assert evaluation.probabilities == {"pain_acceptance": 0.5, "nothing": 0.5}
    # A learning fallback is a randomized decision of the learned rule, not the
    # protocol's fallback: the trial's data keep their meaning.
    assert evaluation.rule_id == "acceptance_learned"
    assert not evaluation.fallback


def test_with_too_little_data_the_fallback_probability_is_used() -> None:
    moment = dataclasses.replace(MOMENT, posterior=posterior([0, 0, 0, -5, 0, 0], rows=49))
    evaluation = evaluate(ADAPTIVE, moment, tailoring())
    assert evaluation.learning is not None
    assert evaluation.learning["fallback_reason"] == (
        "too little data (49 rows with an outcome, the minimum is 50)"
    )
    assert evaluation.learning["posterior_id"] == "p-1"
    assert evaluation.probabilities == {"pain_acceptance": 0.5, "nothing": 0.5}


@pytest.mark.parametrize(
    ("target", "error"),
    [
        ("effect", RuntimeError("singular matrix")),
        ("probability_beyond", FloatingPointError("overflow")),
        ("feature_vector", KeyError("interference_today")),
    ],
)
def test_any_error_computing_the_probability_gives_the_fallback(
    monkeypatch: pytest.MonkeyPatch, target: str, error: Exception
) -> None:
    def broken(*args: object) -> None:
        raise error

    monkeypatch.setattr(learning, target, broken)
    moment = dataclasses.replace(MOMENT, posterior=posterior([0, 0, 0, -5, 0, 0]))
    evaluation = evaluate(ADAPTIVE, moment, tailoring())
    assert evaluation.available
    assert not evaluation.fallback
    assert evaluation.error is None
    assert evaluation.learning is not None
    assert evaluation.learning["fallback"] is True
    assert evaluation.learning["fallback_reason"] == f"{type(error).__name__}: {error}"
    assert evaluation.probabilities == {"pain_acceptance": 0.5, "nothing": 0.5}


def test_a_nan_posterior_gives_the_fallback() -> None:
    nan = float("nan")
    moment = dataclasses.replace(MOMENT, posterior=posterior([0, 0, 0, nan, 0, 0]))
    evaluation = evaluate(ADAPTIVE, moment, tailoring())
    assert evaluation.learning is not None
    assert evaluation.learning["fallback"]
    assert "are not usable" in evaluation.learning["fallback_reason"]


def test_contraindications_tracks_and_burden_apply_to_the_learned_rule() -> None:
    document = ADAPTIVE.model_dump()
    document["intervention_options"][0]["contraindicated_when"] = "attributes.age > 60"
    protocol = Protocol.model_validate(document)
    moment = dataclasses.replace(
        MOMENT, posterior=posterior([0, 0, 0, -5, 0, 0]), attributes={"age": 70}
    )
    excluded = evaluate(protocol, moment, tailoring(protocol))
    assert excluded.excluded == {"pain_acceptance": "contraindicated"}
    assert excluded.probabilities == {"pain_acceptance": 0.0, "nothing": 1.0}
    assert excluded.learning is not None  # logged: what the policy would have given
    # Step-down track: pain_acceptance is not on it when the track lists its options.
    document = ADAPTIVE.model_dump()
    document["smart"]["tracks"]["step_down"]["options"] = ["feedback", "nothing"]
    protocol = Protocol.model_validate(document)
    on_track = dataclasses.replace(moment, attributes={}, track="step_down")
    assert evaluate(protocol, on_track, tailoring(protocol)).excluded == {
        "pain_acceptance": "not on the participant's track"
    }
    # Burden: the daily push budget makes the participant unavailable before any policy.
    busy = dataclasses.replace(moment, attributes={}, pushes_today=6)
    unavailable = evaluate(ADAPTIVE, busy, tailoring())
    assert not unavailable.available
    assert unavailable.learning is None
    assert "daily push budget reached" in (unavailable.unavailable_reason or "")


def test_preferences_weight_the_learned_probability_like_any_rule() -> None:
    moment = dataclasses.replace(
        MOMENT,
        posterior=posterior([0, 0, 0, 0, 0, 0], np.eye(6)),
        attributes={"preferred_categories": ["pain_acceptance"]},
    )
    evaluation = evaluate(ADAPTIVE, moment, tailoring())
    assert evaluation.learning is not None
    assert evaluation.learning["probability_clipped"] == pytest.approx(0.5)
    # Weight 2 for the preferred category, renormalized: 2/3, inside the bounds 0.1-0.9.
    assert evaluation.probabilities["pain_acceptance"] == pytest.approx(2 / 3)


def test_upload_checks_name_the_field() -> None:
    document = ADAPTIVE.model_dump(mode="json")
    learned = document["policy"]["thompson_sampling"]
    learned["treat"] = "nothing"
    learned["noise_variance"] = 0
    with pytest.raises(ProtocolInvalid) as caught:
        parse_protocol(document)
    text = str(caught.value)
    assert "policy.thompson_sampling.noise_variance" in text
    learned["noise_variance"] = 1
    with pytest.raises(ProtocolInvalid) as caught:
        parse_protocol(document)
    paths = {p.path for p in caught.value.problems}
    assert paths == {"policy.thompson_sampling.treat", "policy.thompson_sampling.rule"}


def test_the_config_type_is_exported_for_tools() -> None:
    assert ThompsonSampling.model_fields["kind"].default == "thompson_sampling"
