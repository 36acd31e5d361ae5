"""Per-participant posteriors with shrinkage towards the pool (``random_effects``): the
closed form against the full joint posterior computed by brute force, its limits, and
against the database: the stored pooled posteriors and every decision's own effect
recomputed from the decisions export with the procedure of docs/learning-policies.md."""

import re
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa
import yaml

from app.decision_rules import learning, shrinkage
from app.decision_rules.models import Decision
from app.protocols.learning import RandomEffects
from app.protocols.loading import parse_protocol
from app.protocols.problems import ProtocolInvalid
from app.staff.models import Role
from tests.conftest import World
from tests.support.decisions import Trial
from tests.test_learning_updates import (
    _day,
    _export,
    _local,
    _posteriors,
    _update_at,
    adaptive_document,
)

DOCS = Path(__file__).resolve().parents[1] / "docs" / "learning-policies.md"
# Participant ids are random, and with them every draw: enough days that the two own
# effects separate whatever the draws.
DAYS = 14
EFFECTS = {"baseline_variance": [1.0, 0.05, 0.05], "effect_variance": [2.0, 0.02, 0.02]}


def _joint(
    m0: np.ndarray,
    s0: np.ndarray,
    d: np.ndarray,
    data: list[tuple[np.ndarray, np.ndarray]],
    s2: float,
) -> tuple[np.ndarray, np.ndarray]:
    """The joint posterior of (theta, delta_1, ..., delta_n), by brute force: one big
    linear-Gaussian model, its prior and likelihood written out in full."""
    p, n = len(m0), len(data)
    size = p * (1 + n)
    prior_mean = np.concatenate([m0, np.zeros(p * n)])
    prior_cov = np.zeros((size, size))
    prior_cov[:p, :p] = s0
    for i in range(n):
        prior_cov[p * (i + 1) : p * (i + 2), p * (i + 1) : p * (i + 2)] = d
    rows, ys = [], []
    for i, (z, y) in enumerate(data):
        for zj, yj in zip(z, y, strict=True):
            full = np.zeros(size)
            full[:p] = zj
            full[p * (i + 1) : p * (i + 2)] = zj
            rows.append(full)
            ys.append(yj)
    big_z, big_y = np.array(rows), np.array(ys)
    precision = np.linalg.inv(prior_cov) + big_z.T @ big_z / s2
    cov = np.linalg.inv(precision)
    return cov @ (np.linalg.inv(prior_cov) @ prior_mean + big_z.T @ big_y / s2), cov


def test_the_closed_form_is_the_joint_posterior() -> None:
    rng = np.random.default_rng(1)
    p, s2 = 4, 1.5
    m0 = rng.normal(size=p)
    s0 = np.diag(rng.uniform(0.5, 2, size=p))
    d = np.diag(rng.uniform(0.1, 1, size=p))
    # Three participants with 1, 6 and 20 rows: one too few to identify anything alone.
    data = [(rng.normal(size=(n, p)), rng.normal(size=n)) for n in (1, 6, 20)]
    sums = [shrinkage.Sums(z.T @ z, z.T @ y, len(y)) for z, y in data]
    mean, cov = shrinkage.pooled(m0, s0, sums, d, s2)
    joint_mean, joint_cov = _joint(m0, s0, d, data, s2)
    np.testing.assert_allclose(mean, joint_mean[:p], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(cov, joint_cov[:p, :p], rtol=1e-10, atol=1e-12)
    for i, s in enumerate(sums):
        own_mean, own_cov = shrinkage.participant(mean, cov, s, d, s2)
        # phi_i = theta + delta_i: its mean and covariance in the joint posterior.
        block = np.zeros((p, len(joint_mean)))
        block[:, :p] = np.eye(p)
        block[:, p * (i + 1) : p * (i + 2)] = np.eye(p)
        np.testing.assert_allclose(own_mean, block @ joint_mean, rtol=1e-9, atol=1e-11)
        np.testing.assert_allclose(own_cov, block @ joint_cov @ block.T, rtol=1e-9, atol=1e-11)
    # A participant without rows: the pool, widened by the spread between participants.
    new_mean, new_cov = shrinkage.participant(mean, cov, None, d, s2)
    np.testing.assert_allclose(new_mean, mean)
    np.testing.assert_allclose(new_cov, cov + d)


def test_tiny_deviations_pool_everyone() -> None:
    rng = np.random.default_rng(2)
    p, s2 = 3, 2.0
    m0, s0 = np.zeros(p), np.eye(p)
    data = [(rng.normal(size=(8, p)), rng.normal(size=8)) for _ in range(3)]
    sums = [shrinkage.Sums(z.T @ z, z.T @ y, len(y)) for z, y in data]
    mean, cov = shrinkage.pooled(m0, s0, sums, np.eye(p) * 1e-10, s2)
    rows = [row for z, _ in data for row in z]
    outcomes = [v for _, y in data for v in y]
    pooled_mean, pooled_cov = learning.update(m0, s0, rows, outcomes, s2)
    np.testing.assert_allclose(mean, pooled_mean, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(cov, pooled_cov, rtol=1e-6, atol=1e-8)


def _document(**changes: Any) -> dict[str, Any]:
    document = adaptive_document()
    document["policy"]["thompson_sampling"]["random_effects"] = {**EFFECTS, **changes}
    return document


def test_random_effects_of_the_wrong_length_name_the_field() -> None:
    with pytest.raises(ProtocolInvalid) as caught:
        parse_protocol(yaml.safe_dump(_document(effect_variance=[1.0])))
    (problem,) = caught.value.problems
    assert problem.path == "policy.thompson_sampling.random_effects.effect_variance"
    assert "need 3" in problem.message


def _documented() -> dict[str, Any]:
    text = DOCS.read_text(encoding="utf-8")
    (code,) = re.findall(r"```python\n(# recompute_random_effects\.py.*?)```", text, re.DOTALL)
    namespace: dict[str, Any] = {}
    exec(compile(code, str(DOCS), "exec"), namespace)  # noqa: S102 - our own docs
    return namespace


def test_each_participant_learns_their_own_effect_and_it_recomputes_from_the_export(
    world: World,
) -> None:
    world.clock.set(_local(0, 7))
    document = _document()
    trial = Trial(world, document)
    helped, harmed = trial.participant(), trial.participant()
    rng = np.random.default_rng(4)
    for day in range(DAYS):
        # The exercise lowers interference by about 3 for one participant and raises it by
        # 3 for the other (the model's effect moves with acceptance too; here the
        # participants differ in their own intercept).
        _day(trial, helped, day, rng, effect_shift=-2.0)
        _day(trial, harmed, day, rng, effect_shift=4.0)
        assert _update_at(world, _local(day + 1, 3)) == 1
    stored = _posteriors(world, trial)
    assert all(p.participants is not None for p in stored)
    assert set(stored[-1].participants or {}) == {str(helped), str(harmed)}
    with world.session_factory() as session:
        decisions = list(session.scalars(sa.select(Decision).order_by(Decision.decided_at)))
    last = {d.participant_id: d for d in decisions}
    own = {pid: (last[pid].learning or {}) for pid in (helped, harmed)}
    # Lower is better: the helped participant's own effect is below the harmed one's, and
    # each rests on their own rows.
    assert own[helped]["effect_mean"] < 0 < own[harmed]["effect_mean"], own
    assert own[helped]["participant_rows"] == own[harmed]["participant_rows"] == DAYS - 1

    # Recomputed from the export with the documented procedure.
    procedure = _documented()
    rows = _export(world, trial.study_id)
    history = world.client.get(
        f"/v1/studies/{trial.study_id}/posteriors", headers=world.staff(Role.researcher)
    ).json()["items"][::-1]
    config = document["policy"]["thompson_sampling"]
    results = list(procedure["recompute_random_effects"](config, 1, rows, history))
    assert len(results) == len(stored)
    by_id: dict[str, tuple[np.ndarray, np.ndarray, dict[str, Any]]] = {}
    for row, (ids, mean, cov, sums) in zip(stored, results, strict=True):
        assert ids == [i for i, _ in row.inputs]
        np.testing.assert_allclose(mean, row.mean, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(cov, row.covariance, rtol=1e-10, atol=1e-12)
        by_id[str(row.id)] = (mean, cov, sums)
    exported = {r["decision_id"]: r for r in rows}
    checked = 0
    for decision in decisions:
        learned = decision.learning or {}
        if learned.get("fallback", True):
            continue
        mean, cov, sums = by_id[learned["posterior_id"]]
        own_mean, own_cov = procedure["participant_posterior"](
            mean, cov, sums.get(str(decision.participant_id)), config
        )
        cells = exported[str(decision.id)]
        x = np.array(
            [1.0, float(cells["tv_interference_today"]), float(cells["tv_acceptance_today"])]
        )
        assert learned["effect_mean"] == pytest.approx(float(x @ own_mean[3:]), rel=1e-9)
        assert learned["effect_variance"] == pytest.approx(float(x @ own_cov[3:, 3:] @ x), rel=1e-9)
        checked += 1
    assert checked >= 10


def test_the_participant_posterior_endpoint(world: World) -> None:
    world.clock.set(_local(0, 7))
    trial = Trial(world, _document())
    pid = trial.participant()
    newcomer = trial.participant()
    rng = np.random.default_rng(5)
    for day in range(3):
        _day(trial, pid, day, rng)
        _update_at(world, _local(day + 1, 3))
    url = f"/v1/studies/{trial.study_id}/participants/{pid}/posterior"
    response = world.client.get(url, headers=world.staff(Role.researcher))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["participant_rows"] == 3
    assert len(body["mean"]) == 6
    assert len(body["covariance"]) == 6
    assert body["coefficients"][3] == "effect:intercept"
    fresh = world.client.get(
        f"/v1/studies/{trial.study_id}/participants/{newcomer}/posterior",
        headers=world.staff(Role.researcher),
    ).json()
    assert fresh["participant_rows"] == 0
    # Without rows of their own: the pool's mean, the pool's variance plus the spread.
    assert fresh["mean"] == pytest.approx(body["pooled_mean"])
    missing = world.client.get(
        f"/v1/studies/{trial.study_id}/participants/{uuid.uuid4()}/posterior",
        headers=world.staff(Role.researcher),
    )
    assert missing.status_code == 404


def test_random_effects_shape() -> None:
    d = shrinkage.deviation_covariance(RandomEffects(**EFFECTS))
    assert np.diag(d).tolist() == [1.0, 0.05, 0.05, 2.0, 0.02, 0.02]
