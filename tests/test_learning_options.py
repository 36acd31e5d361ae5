"""Thompson sampling with several treat options (``treat: [a, b]``): each option has its
own effect; P(option) is the posterior probability that it is the best of all, nothing
included (beyond the threshold), by Monte Carlo with common random numbers; the update's
design has one centred-action block per option; checks name the field."""

import dataclasses
from typing import Any

import numpy as np
import pytest
import yaml

from app.decision_rules import learning
from app.decision_rules.evaluation import evaluate
from app.decision_rules.learning import Posterior
from app.decision_rules.posteriors import learning_row
from app.protocols.document import Protocol
from app.protocols.loading import parse_protocol
from app.protocols.problems import ProtocolInvalid
from app.staff.models import Role
from tests.conftest import World
from tests.support.decisions import ATTRIBUTES, Trial
from tests.test_decisions_api import TAILORING
from tests.test_learning_policy import ADAPTIVE, tailoring
from tests.test_learning_policy import MOMENT as STAGE_1
from tests.test_learning_updates import (
    _day,
    _documented_procedure,
    _export,
    _local,
    _posteriors,
    _update_at,
)

TREATS = ["pain_acceptance", "mindfulness"]


def _document(**changes: Any) -> dict[str, Any]:
    document = ADAPTIVE.model_dump(mode="json", exclude_none=True)
    learned = document["policy"]["thompson_sampling"]
    learned["treat"] = TREATS
    learned.update(changes)
    for rule in document["policy"]["rules"]:
        if rule["id"] == learned["rule"]:
            rule["randomize"] = {"pain_acceptance": 0.3, "mindfulness": 0.2, "nothing": 0.5}
    return document


PROTOCOL: Protocol = Protocol.model_validate(_document())
_CONFIG = PROTOCOL.policy.thompson_sampling
assert _CONFIG is not None
CONFIG = _CONFIG
# Mindfulness has a contraindication over this attribute.
MOMENT = dataclasses.replace(STAGE_1, attributes={"trauma_history": False})


def _posterior(effects: list[list[float]], variance: float = 1e-4) -> Posterior:
    """Baseline zero; one effect block (intercept, interference, acceptance) per option."""
    mean = np.array([0.0, 0.0, 0.0, *[v for block in effects for v in block]])
    return Posterior("p-1", mean, np.eye(len(mean)) * variance, rows_total=500)


def test_the_prior_has_one_effect_block_per_option() -> None:
    mean, cov = learning.prior(CONFIG)
    assert len(mean) == 9
    np.testing.assert_allclose(np.diag(cov)[3:6], np.diag(cov)[6:9])


def test_the_clearly_best_option_gets_what_the_bounds_leave() -> None:
    # better: lower. Mindfulness lowers interference by 2, acceptance by 0.5.
    moment = dataclasses.replace(MOMENT, posterior=_posterior([[-0.5, 0, 0], [-2.0, 0, 0]]))
    evaluation = evaluate(PROTOCOL, moment, tailoring())
    record = evaluation.learning
    assert record is not None
    assert not record["fallback"]
    assert record["probability_unclipped"]["mindfulness"] == pytest.approx(1.0)
    # Every arm keeps its lower bound of 0.2, so the best gets 0.6, not the upper 0.8.
    assert evaluation.probabilities == pytest.approx(
        {"pain_acceptance": 0.2, "mindfulness": 0.6, "nothing": 0.2}
    )
    assert record["effect_mean"] == pytest.approx({"pain_acceptance": -0.5, "mindfulness": -2.0})
    assert sum(evaluation.probabilities.values()) == pytest.approx(1.0)
    for p in evaluation.probabilities.values():
        assert 0.2 - 1e-9 <= p <= 0.8 + 1e-9 or p == 0


def test_equal_options_split_and_no_benefit_means_nothing() -> None:
    equal = learning.best_option_probabilities(CONFIG, np.array([-1.0, -1.0]), np.eye(2) * 0.25)
    assert equal["pain_acceptance"] == pytest.approx(0.5, abs=0.02)
    assert equal["mindfulness"] == pytest.approx(0.5, abs=0.02)
    harmful = learning.best_option_probabilities(CONFIG, np.array([2.0, 3.0]), np.eye(2) * 0.01)
    assert harmful[""] == pytest.approx(1.0)


def test_the_monte_carlo_agrees_with_an_independent_one() -> None:
    means, cov = np.array([-0.3, -0.1]), np.array([[0.2, 0.05], [0.05, 0.3]])
    got = learning.best_option_probabilities(CONFIG, means, cov)
    draws = np.random.default_rng(99).multivariate_normal(means, cov, size=400_000)
    advantage = -draws  # better: lower, threshold 0
    best = advantage.argmax(axis=1)
    beyond = advantage.max(axis=1) > 0
    assert got[""] == pytest.approx(float(np.mean(~beyond)), abs=0.02)
    assert got["pain_acceptance"] == pytest.approx(float(np.mean(beyond & (best == 0))), abs=0.02)
    # Deterministic: the same posterior always gives the same probabilities.
    assert got == learning.best_option_probabilities(CONFIG, means, cov)


def test_before_the_first_update_the_fallback_splits_in_the_declared_proportions() -> None:
    evaluation = evaluate(PROTOCOL, MOMENT, tailoring())
    record = evaluation.learning
    assert record is not None
    assert record["fallback"]
    # fallback_probability 0.5 split 0.3 : 0.2.
    assert evaluation.probabilities == pytest.approx(
        {"pain_acceptance": 0.3, "mindfulness": 0.2, "nothing": 0.5}
    )


def test_the_update_row_has_a_centred_action_per_option() -> None:
    decision = {
        "rule_id": CONFIG.rule,
        "available": True,
        "randomized": True,
        "learning": {"policy": "thompson_sampling"},
        "option_id": "mindfulness",
        "probabilities": {"pain_acceptance": 0.3, "mindfulness": 0.2, "nothing": 0.5},
        "tailoring": {"interference_today": 6.0, "acceptance_today": 2.0},
    }
    row = learning_row(CONFIG, decision, 4.0)
    assert row is not None
    z = learning.design_row(CONFIG, row)
    x = np.array([1.0, 6.0, 2.0])
    np.testing.assert_allclose(z, np.concatenate([x, -0.3 * x, 0.8 * x]))


def test_checks_name_the_field() -> None:
    document = _document()
    for rule in document["policy"]["rules"]:
        if rule["id"] == document["policy"]["thompson_sampling"]["rule"]:
            rule["randomize"] = {"pain_acceptance": 0.5, "nothing": 0.5}
    with pytest.raises(ProtocolInvalid) as caught:
        parse_protocol(yaml.safe_dump(document))
    paths = {p.path: p.message for p in caught.value.problems}
    assert "'pain_acceptance', 'mindfulness'" in paths["policy.thompson_sampling.rule"]
    with pytest.raises(ProtocolInvalid) as caught:
        parse_protocol(yaml.safe_dump(_document(smoothing={"slope": 1.0})))
    assert [p.path for p in caught.value.problems] == ["policy.thompson_sampling.smoothing"]
    with pytest.raises(ProtocolInvalid) as caught:
        parse_protocol(yaml.safe_dump(_document(treat=["pain_acceptance", "nothing"])))
    assert "policy.thompson_sampling.treat[1]" in {p.path for p in caught.value.problems}


def test_several_options_recompute_from_the_export_and_the_preview_uses_the_posterior(
    world: World,
) -> None:
    world.clock.set(_local(0, 7))
    document = _document(min_rows=3)
    trial = Trial(world, document)
    pids = [trial.participant() for _ in range(2)]
    rng = np.random.default_rng(8)
    for day in range(5):
        for pid in pids:
            _day(trial, pid, day, rng)
        assert _update_at(world, _local(day + 1, 3)) == 1
    stored = _posteriors(world, trial)
    assert len(stored[-1].mean) == 9
    rows = _export(world, trial.study_id)
    assert {r["action"] for r in rows} <= {"pain_acceptance", "mindfulness", "nothing"}
    history = world.client.get(
        f"/v1/studies/{trial.study_id}/posteriors", headers=world.staff(Role.researcher)
    ).json()["items"][::-1]
    config = document["policy"]["thompson_sampling"]
    recompute = _documented_procedure()
    for row, (ids, mean, cov) in zip(stored, recompute(config, 1, rows, history), strict=True):
        assert ids == [i for i, _ in row.inputs]
        np.testing.assert_allclose(mean, row.mean, rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(cov, row.covariance, rtol=1e-12, atol=1e-15)
    # The preview decides with the study's current posterior, as the live engine does.
    preview = world.client.post(
        f"/v1/studies/{trial.study_id}/decisions/preview",
        json={
            "decision_point": "morning",
            "local_time": "2026-03-09T09:00:00",
            "tailoring": {**TAILORING, "steps_3h": 900},
            "attributes": ATTRIBUTES,
            "study_day": 7,
        },
        headers=world.staff(Role.researcher),
    )
    assert preview.status_code == 200, preview.text
    learned = preview.json()["learning"]
    assert learned["posterior_id"] == str(stored[-1].id)
    assert learned["fallback"] is False
    assert set(learned["effect_mean"]) == set(TREATS)
