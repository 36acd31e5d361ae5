"""`kairos simulate --power`: the power of the MRT analysis by the formula of Liao et al.
(2016), its inputs estimated from simulated trials, against the share of significant WCLS
tests in repeated simulations of the same trial."""

import json
from pathlib import Path
from typing import Any

import yaml
from typer.testing import CliRunner

from app.cli import cli
from app.protocols.example_files import MINIMAL, example_text
from app.simulation.behaviour import parse_behaviour
from app.simulation.power_study import power_section
from app.study_operations.protocol_versions import validate_document


def _protocol() -> str:
    # The minimal example micro-randomizes a movement prompt (p = 0.5) every afternoon at
    # 15:00; a pain check-in at 16:00 gives the proximal outcome (pain within 4 hours).
    document = yaml.safe_load(example_text(MINIMAL))
    document["ema_schedules"][0]["times"] = ["16:00"]
    document["proximal_outcomes"] = [
        {"name": "next_pain", "source": "ema", "item": "*.pain", "window_minutes_after": 240}
    ]
    return yaml.safe_dump(document)


def _behaviour(shift: float, answering: float) -> str:
    return (
        f"effects: [{{option: movement, item: pain, shift: {shift}, hours: 3}}]\n"
        f"answering: {{probability: {answering}, weekly_change: 0}}\n"
    )


def test_the_formula_agrees_with_repeated_simulation() -> None:
    # 20 participants x 3 days, one decision a day; 40% of check-ins go unanswered, so
    # the formula's availability (randomized decisions with an outcome) is about 0.6, far
    # from 1: a formula that ignored it would be off by some 30% in its standard error.
    # The effect is chosen so that the power is in the middle, where errors show.
    source = _protocol()
    section = power_section(
        source,
        validate_document(source),
        parse_behaviour(_behaviour(-1.5, 0.6)),
        participants=20,
        days=3,
        seed=1,
        replicates=12,
        check=False,
    )
    inputs = section["inputs"]
    assert 0.45 < inputs["mean_availability"] < 0.75
    assert inputs["mean_probability"] == 0.5
    assert inputs["declared_effects"] == [
        {"option": "movement", "item": "pain", "shift": -1.5, "hours": 3.0}
    ]
    at: dict[str, Any] = section["at_simulated_n"]
    formula, simulated = at["formula"], at["simulation"]
    assert simulated["analysed"] == 12
    assert 0.3 < formula < 0.95, formula  # not a power of 0 or 1, where both always agree
    # Within 3 Monte Carlo standard errors, plus 0.05: at 20 participants the
    # Mancl-DeRouen corrected test (as `kairos analyze mrt` runs it) is a little
    # conservative, and its power a little below the formula's.
    assert abs(simulated["power"] - formula) <= 3 * simulated["mc_se"] + 0.05, at
    # The sharper check: the standard error the formula implies (residual SD over
    # sqrt(N sum tau p (1 - p))) is what WCLS reports on average (the correction adds some
    # 5-15% at this size).
    ratio = at["standard_error"]["simulation_mean"] / at["standard_error"]["formula"]
    assert 0.9 < ratio < 1.3, at["standard_error"]
    assert section["needed"]["formula"] >= 0.8


def test_kairos_simulate_power_adds_the_section(tmp_path: Path) -> None:
    protocol = tmp_path / "protocol.yaml"
    protocol.write_text(_protocol())
    behaviour = tmp_path / "behaviour.yaml"
    behaviour.write_text(_behaviour(-3, 0.95))
    out = tmp_path / "out"
    args = ["simulate", str(protocol), "--participants", "4", "--days", "2"]
    args += ["--behaviour", str(behaviour), "--out", str(out), "--power"]
    result = CliRunner().invoke(cli, [*args, "--power-replicates", "2"])
    assert result.exit_code == 0, result.output
    assert "power at 4 participants: formula" in result.output
    report = json.loads((out / "report.json").read_text())
    power = report["power"]
    assert power["outcome"] == "outcome_next_pain"
    assert power["at_simulated_n"]["simulation"]["replicates"] == 2
    # This run is the first of the trials, the second has the next seed.
    assert power["at_simulated_n"]["simulation"]["seeds"] == [1, 2]
    needed = power["needed"]
    assert needed["participants"] >= 3
    assert needed["simulation"]["replicates"] == 2  # checked by simulation at that size
    assert "<h2>Power: outcome_next_pain</h2>" in (out / "report.html").read_text()


def test_kairos_simulate_power_needs_a_proximal_outcome(tmp_path: Path) -> None:
    protocol = tmp_path / "protocol.yaml"
    protocol.write_text(example_text(MINIMAL))  # declares no proximal outcome
    args = ["simulate", str(protocol), "--participants", "1", "--days", "1"]
    result = CliRunner().invoke(cli, [*args, "--out", str(tmp_path / "out"), "--power"])
    assert result.exit_code == 2
    assert "no proximal outcome" in result.output
