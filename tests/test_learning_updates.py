"""The learning policy against the database: decisions before and after the nightly
posterior updates, the stored posteriors against the closed form, every posterior
recomputed from the decisions export with the procedure of docs/learning-policies.md,
every draw re-derived from its seed, and the update never stopping the study."""

import csv
import io
import itertools
import json
import logging
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa
import yaml

from app.decision_rules import learning
from app.decision_rules.engine import decide_batch
from app.decision_rules.models import Decision, PolicyPosterior
from app.decision_rules.posteriors import update_due_posteriors
from app.decision_rules.seeding import choose, derive_seed, uniform
from app.notifications.providers import LoggingProvider
from app.protocols.example_files import CHRONIC_PAIN_ADAPTIVE, example_text
from app.staff.models import Role
from app.worker.runner import Worker
from tests.conftest import World
from tests.support.decisions import Trial

DOCS = Path(__file__).resolve().parents[1] / "docs" / "learning-policies.md"
# Monday 2 March 2026; Berlin is UTC+1 until the end of March.
MONDAY = datetime(2026, 3, 2, tzinfo=UTC)


def adaptive_document() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(example_text(CHRONIC_PAIN_ADAPTIVE))
    # A few days of one participant are enough data here.
    document["policy"]["thompson_sampling"]["min_rows"] = 3
    return document


def _local(day: int, hour: int, minute: int = 0) -> datetime:
    """A Berlin wall-clock time on the day'th day after MONDAY, in UTC."""
    return MONDAY + timedelta(days=day, hours=hour - 1, minutes=minute)


def _day(
    trial: Trial, pid: uuid.UUID, day: int, rng: np.random.Generator, effect_shift: float = 0.0
) -> Decision:
    """One study day: a morning answer with high interference (so the learned rule holds),
    the 09:00 decision, and the next check-in (the proximal outcome) at 11:00."""
    interference = int(rng.integers(4, 10))
    acceptance = int(rng.integers(0, 10))
    answers = {"interference": interference, "acceptance": acceptance}
    trial.ema(pid, "morning", answers, _local(day, 8, 30))
    decision, _ = trial.decide_one(pid, "morning", _local(day, 9))
    treated = decision.option_id == "pain_acceptance"
    # The prompt helps more when acceptance is low (the model's moderated effect).
    effect = -2.0 + 0.2 * acceptance + effect_shift if treated else 0.0
    outcome = int(np.clip(round(interference + effect + rng.normal(0, 1)), 0, 10))
    trial.ema(pid, "checkin", {"interference": outcome}, _local(day, 11))
    return decision


def _posteriors(world: World, trial: Trial) -> list[PolicyPosterior]:
    with world.session_factory() as session:
        return list(
            session.scalars(
                sa.select(PolicyPosterior)
                .where(PolicyPosterior.study_id == uuid.UUID(trial.study_id))
                .order_by(PolicyPosterior.scheduled_for)
            )
        )


def _update_at(world: World, at: datetime) -> int:
    world.clock.set(at)
    return update_due_posteriors(world.session_factory, world.clock)


def _run_study(world: World) -> tuple[Trial, list[uuid.UUID]]:
    """Two participants over five days, with the nightly updates in between."""
    world.clock.set(_local(0, 7))
    trial = Trial(world, adaptive_document())
    pids = [trial.participant(), trial.participant()]
    rng = np.random.default_rng(3)
    for day in range(5):
        for pid in pids:
            _day(trial, pid, day, rng)
        assert _update_at(world, _local(day + 1, 3)) == 1
    return trial, pids


def _export(world: World, study_id: str) -> list[dict[str, str]]:
    response = world.client.get(
        f"/v1/studies/{study_id}/exports/decisions", headers=world.staff(Role.researcher)
    )
    assert response.status_code == 200, response.text
    return list(csv.DictReader(io.StringIO(response.text)))


def _closed_form(rows: list[Decision], outcomes: dict[str, float]) -> tuple[np.ndarray, ...]:
    """The posterior from the prior and all rows at once (the example's prior)."""
    m0 = np.array([1.0, 0.8, -0.1, 0.0, 0.0, 0.0])
    s0 = np.diag([4.0, 0.25, 0.25, 1.0, 0.04, 0.04])
    x = np.array(
        [[1.0, d.tailoring["interference_today"], d.tailoring["acceptance_today"]] for d in rows]
    )
    a = np.array([float(d.option_id == "pain_acceptance") for d in rows])
    pi = np.array([d.probabilities["pain_acceptance"] for d in rows])
    z = np.hstack([x, (a - pi)[:, None] * x])
    y = np.array([outcomes[str(d.id)] for d in rows])
    cov = np.linalg.inv(np.linalg.inv(s0) + z.T @ z / 2.25)
    return cov @ (np.linalg.inv(s0) @ m0 + z.T @ y / 2.25), cov


def test_decisions_learn_from_the_nightly_posteriors(world: World) -> None:
    trial, _ = _run_study(world)
    stored = _posteriors(world, trial)
    assert len(stored) == 5
    with world.session_factory() as session:
        decisions = list(session.scalars(sa.select(Decision).order_by(Decision.decided_at)))
    assert len(decisions) == 10
    # Day 0: no posterior yet; every decision of the learned rule says so.
    for decision in decisions[:2]:
        assert decision.rule_id == "acceptance_learned"
        assert decision.learning is not None
        assert decision.learning["fallback"] is True
        assert decision.learning["fallback_reason"] == "no posterior yet (before the first update)"
        assert decision.probabilities == {"pain_acceptance": 0.5, "nothing": 0.5}
    # Day 1: the first posterior has 2 rows, fewer than the minimum of 3.
    assert decisions[2].learning is not None
    assert decisions[2].learning["posterior_id"] == str(stored[0].id)
    assert decisions[2].learning["fallback_reason"] == (
        "too little data (2 rows with an outcome, the minimum is 3)"
    )
    # From day 2 on the posterior decides, with what it saw recorded.
    for index, decision in enumerate(decisions[4:], start=4):
        learned = decision.learning
        assert learned is not None
        assert learned["fallback"] is False
        # Day d's decisions use the posterior of the night before (index // 2 is the day).
        assert learned["posterior_id"] == str(stored[index // 2 - 1].id)
        assert set(learned["features"]) == {"interference_today", "acceptance_today"}
        assert 0.2 <= learned["probability_clipped"] <= 0.8
        assert decision.probabilities["pain_acceptance"] == pytest.approx(
            learned["probability_clipped"]
        )
        assert learned["effect_variance"] > 0
    # Each update used the new rows only and chains to the previous posterior.
    assert [p.rows_used for p in stored] == [2, 2, 2, 2, 2]
    assert [p.rows_total for p in stored] == [2, 4, 6, 8, 10]
    assert [p.previous_id for p in stored] == [None, *(p.id for p in stored[:-1])]
    assert stored[0].inputs_from is None
    for earlier, later in itertools.pairwise(stored):
        assert later.inputs_from == earlier.inputs_to
    # The last posterior is the closed form over every row.
    outcomes = {i: y for p in stored for i, y in p.inputs}
    mean, cov = _closed_form(decisions, outcomes)
    np.testing.assert_allclose(stored[-1].mean, mean, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(stored[-1].covariance, cov, rtol=1e-9, atol=1e-14)
    # The effect mean a decision logged is its posterior's at its features.
    last = decisions[-1]
    assert last.learning is not None
    posterior = next(p for p in stored if str(p.id) == last.learning["posterior_id"])
    x = np.array([1.0, last.tailoring["interference_today"], last.tailoring["acceptance_today"]])
    assert last.learning["effect_mean"] == pytest.approx(float(x @ np.array(posterior.mean)[3:]))


def test_an_update_happens_once_per_due_time(world: World) -> None:
    trial, _ = _run_study(world)
    # Later the same night, and again: nothing new is due.
    assert _update_at(world, _local(5, 3, 30)) == 0
    assert _update_at(world, _local(5, 23)) == 0
    # A worker that was down for three nights catches up with one update.
    assert _update_at(world, _local(8, 4)) == 1
    stored = _posteriors(world, trial)
    assert stored[-1].scheduled_for == _local(8, 3)
    assert stored[-1].rows_used == 0  # nothing new was decided
    assert stored[-1].mean == stored[-2].mean


def _documented_procedure() -> Any:
    """The recompute procedure, run exactly as docs/learning-policies.md prints it."""
    text = DOCS.read_text(encoding="utf-8")
    (code,) = re.findall(r"```python\n(# recompute\.py.*?)```", text, flags=re.DOTALL)
    namespace: dict[str, Any] = {}
    exec(compile(code, str(DOCS), "exec"), namespace)  # noqa: S102 - our own docs
    return namespace["recompute"]


def test_every_posterior_is_recomputed_from_the_export(world: World) -> None:
    trial, _ = _run_study(world)
    rows = _export(world, trial.study_id)
    history = world.client.get(
        f"/v1/studies/{trial.study_id}/posteriors", headers=world.staff(Role.researcher)
    )
    assert history.status_code == 200, history.text
    posteriors = list(reversed(history.json()["items"]))  # newest first: oldest first here
    assert len(posteriors) == 5
    config = adaptive_document()["policy"]["thompson_sampling"]
    recompute = _documented_procedure()
    stored = _posteriors(world, trial)
    results: Iterator[Any] = recompute(config, 1, rows, posteriors)
    for row, (ids, mean, cov) in zip(stored, results, strict=True):
        assert ids == [i for i, _ in row.inputs]
        assert len(ids) == row.rows_used
        np.testing.assert_allclose(mean, row.mean, rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(cov, row.covariance, rtol=1e-12, atol=1e-15)


def test_every_draw_is_re_derived_from_its_seed(world: World) -> None:
    trial, _ = _run_study(world)
    seed = adaptive_document()["study"]["random_seed"]
    rows = _export(world, trial.study_id)
    assert len(rows) == 10
    for row in rows:
        expected = derive_seed(
            seed, row["participant_id"], row["decision_point_id"], row["decision_index"]
        )
        assert int(row["seed"]) == expected
        assert float(row["draw"]) == uniform(expected)
        assert choose(json.loads(row["probabilities"]), uniform(expected)) == row["action"]
        learned = json.loads(row["learning"])
        assert learned["policy"] == "thompson_sampling"


def test_a_failing_update_is_logged_and_decisions_go_on(
    world: World, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    world.clock.set(_local(0, 7))
    trial = Trial(world, adaptive_document())
    pid = trial.participant()
    rng = np.random.default_rng(5)
    _day(trial, pid, 0, rng)

    def broken(*args: object, **kwargs: object) -> None:
        raise np.linalg.LinAlgError("Singular matrix")

    monkeypatch.setattr(learning, "update_from_sums", broken)
    with caplog.at_level(logging.ERROR):
        assert _update_at(world, _local(1, 3)) == 0
    assert "posterior update of study" in caplog.text
    assert _posteriors(world, trial) == []
    # The next decision still happens, with the fallback probability and its reason.
    decision = _day(trial, pid, 1, rng)
    assert decision.learning is not None
    assert decision.learning["fallback_reason"] == "no posterior yet (before the first update)"
    # Once the update works again, the missed night is caught up.
    monkeypatch.undo()
    assert _update_at(world, _local(2, 3)) == 1
    assert _posteriors(world, trial)[0].rows_used == 2


def test_the_worker_runs_the_due_update_in_its_tick(world: World) -> None:
    world.clock.set(_local(0, 7))
    trial = Trial(world, adaptive_document())
    pid = trial.participant()
    _day(trial, pid, 0, np.random.default_rng(9))
    worker = Worker(
        world.session_factory,
        world.clock,
        tick_seconds=1,
        worker_id="learning-worker",
        decider=decide_batch,
        provider=LoggingProvider(),
    )
    world.clock.set(_local(1, 2, 59))
    assert worker.run_pending().posterior_updates == 0  # not due yet
    world.clock.set(_local(1, 3))
    assert worker.run_pending().posterior_updates == 1
    assert worker.run_pending().posterior_updates == 0
    assert [p.rows_used for p in _posteriors(world, trial)] == [1]
