"""Power and sample size of a simulated micro-randomized trial, two ways that must agree:

- by the formula of Liao et al. (2016) (``app.simulation.power``), its inputs estimated from
  the simulations: availability and randomization probability per decision point from the
  decisions exports, the standardized effect as the WCLS estimate over the residual
  standard deviation of the outcome;
- by repeated simulation: the simulator is run R times at the same number of participants
  (other seeds), each decisions export is analysed as ``kairos analyze mrt`` does (WCLS, the
  fully marginal effect, no controls), and the power is the fraction of runs whose test is
  significant, with its Monte Carlo standard error. The number of participants the formula
  says gives 80% power is then simulated R times too, to see 80% come out.

The test is that of ``kairos analyze mrt`` with no moderators and no controls, so the
formula has one effect term (a constant effect: p = 1) and one control term (the
intercept: q = 1), and both use F(1, N - 2).
"""

import math
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from app.analysis.decisions_csv import load_columns
from app.analysis.wcls import wcls
from app.protocols.document import Protocol
from app.protocols.outcomes import EmaOutcome
from app.simulation import power
from app.simulation.behaviour import Behaviour
from app.simulation.report import write_decisions_csv
from app.simulation.runner import simulate

OUTCOME_PREFIX = "outcome_"
TARGET_POWER = 0.8
# Seeds of the repeated runs at the formula's N start this far past the run's own seed, so
# that they are not the runs at the simulated N again (the same seed makes the same people).
CHECK_SEED_OFFSET = 10_000

Progress = Callable[[str], None]


@dataclass
class Replicate:
    """One simulated trial, analysed."""

    seed: int
    participants: int
    estimate: float | None = None
    std_error: float | None = None
    p_value: float | None = None
    residual_sd: float | None = None
    error: str | None = None
    # Per (study day, index of the decision within the participant's day): how many
    # randomized decisions had an outcome, and the sum of their probabilities.
    cells: dict[tuple[int, int], list[float]] = field(default_factory=dict)

    def significant(self, alpha: float) -> bool:
        return self.p_value is not None and self.p_value < alpha


def analyse_export(path: Path, *, outcome_column: str, seed: int, participants: int) -> Replicate:
    """The WCLS test of the fully marginal effect on one decisions export, and the
    formula's inputs from it."""
    data = load_columns(
        path,
        [
            "participant_id",
            "study_day",
            "planned_at",
            "available",
            "treated",
            "probability",
            outcome_column,
        ],
    )
    probability = np.asarray(data["probability"], dtype=float)
    outcome = np.asarray(data[outcome_column], dtype=float)
    # As mrt_arrays() for the API's analysis: a decision whose probability was 0 or 1 (a
    # fixed rule, the option not on offer) was not micro-randomized and cannot inform the
    # excursion effect, so it counts as unavailable.
    randomized = (
        (np.asarray(data["available"], dtype=float) == 1.0)
        & np.isfinite(probability)
        & (probability > 0)
        & (probability < 1)
    )
    replicate = Replicate(seed=seed, participants=participants)
    replicate.cells = _cells(data, randomized & np.isfinite(outcome), probability)
    columns = {
        "participant_id": data["participant_id"],
        "treated": np.nan_to_num(np.asarray(data["treated"], dtype=float)),
        "probability": np.where(randomized, probability, 0.5),
        "available": randomized.astype(float),
        outcome_column: outcome,
    }
    try:
        result = wcls(columns, outcome=outcome_column)
    except ValueError as exc:
        replicate.error = str(exc)
        return replicate
    (effect,) = result.coefficients
    replicate.estimate = effect.estimate
    replicate.std_error = effect.std_error
    replicate.p_value = effect.p_value
    replicate.residual_sd = _residual_sd(columns, outcome_column, effect.estimate, result)
    return replicate


def _cells(
    data: dict[str, Any], used: np.ndarray[Any, Any], probability: np.ndarray[Any, Any]
) -> dict[tuple[int, int], list[float]]:
    """Decisions are numbered within each participant's study day in planned order, so
    that the formula's decision points are (day, k) whatever the protocol's times."""
    days = np.asarray(data["study_day"], dtype=float)
    order: dict[tuple[str, int], list[tuple[str, int]]] = defaultdict(list)
    for row, (pid, day, planned) in enumerate(
        zip(data["participant_id"], days, data["planned_at"], strict=True)
    ):
        if math.isfinite(day):
            order[(str(pid), int(day))].append((str(planned), row))
    cells: dict[tuple[int, int], list[float]] = {}
    for (_, day), rows in order.items():
        for k, (_, row) in enumerate(sorted(rows)):
            cell = cells.setdefault((day, k), [0.0, 0.0])
            if used[row]:
                cell[0] += 1
                cell[1] += float(probability[row])
    return cells


def _residual_sd(columns: dict[str, Any], outcome: str, beta: float, result: Any) -> float:
    """The outcome's standard deviation about the fitted working model (intercept and
    centred treatment), weighted as the fit is: the scale of the standardized effect."""
    available = columns["available"] == 1.0
    y = np.asarray(columns[outcome], dtype=float)
    rows = available & np.isfinite(y)
    y = y[rows]
    a = columns["treated"][rows]
    p = columns["probability"][rows]
    numerator = result.numerator_prob
    weight = np.where(a == 1.0, numerator / p, (1.0 - numerator) / (1.0 - p))
    centred = y - (a - numerator) * beta
    alpha = float(np.sum(weight * centred) / np.sum(weight))
    residual = centred - alpha
    return math.sqrt(float(np.sum(weight * residual**2) / np.sum(weight)))


def run_replicate(
    protocol_source: str,
    behaviour: Behaviour,
    *,
    participants: int,
    days: int,
    seed: int,
    outcome_column: str,
) -> Replicate:
    """Simulate one trial and analyse its decisions export."""
    with tempfile.TemporaryDirectory(prefix="kairos-power-") as scratch:
        sim = simulate(
            protocol_source, participants=participants, days=days, seed=seed, behaviour=behaviour
        )
        try:
            path = Path(scratch) / "decisions.csv"
            write_decisions_csv(sim, path)
        finally:
            sim.close()
        return analyse_export(
            path, outcome_column=outcome_column, seed=seed, participants=participants
        )


def design_from(replicates: list[Replicate], days: int) -> tuple[power.MrtDesign, float, float]:
    """The formula's design from the runs (pooled: every run is a draw of the same trial),
    with the standardized effect and the residual standard deviation it used."""
    fitted = [r for r in replicates if r.estimate is not None and r.residual_sd is not None]
    if not fitted:
        raise ValueError("no simulated trial could be analysed: " + _first_error(replicates))
    occasions = 1 + max((k for r in replicates for (_, k) in r.cells), default=0)
    used = np.zeros((days, occasions))
    probability_sum = np.zeros((days, occasions))
    for r in replicates:
        for (day, k), (count, total) in r.cells.items():
            if 0 <= day < days:
                used[day, k] += count
                probability_sum[day, k] += total
    participants = sum(r.participants for r in replicates)
    availability = used / participants
    # Where nobody was randomized the probability does not matter (availability is 0).
    probability = np.divide(probability_sum, used, out=np.full_like(used, 0.5), where=used > 0)
    estimate = float(np.mean([r.estimate for r in fitted if r.estimate is not None]))
    residual_sd = math.sqrt(float(np.mean([r.residual_sd**2 for r in fitted if r.residual_sd])))
    standardized = estimate / residual_sd if residual_sd > 0 else 0.0
    design = power.MrtDesign.of(
        days=days,
        occasions_per_day=occasions,
        probability=probability.ravel(),
        availability=availability.ravel(),
        effect=standardized,
        effect_terms=1,
        control_terms=1,
    )
    return design, standardized, residual_sd


def _first_error(replicates: list[Replicate]) -> str:
    return next((r.error for r in replicates if r.error), "no decisions")


def simulated_power(replicates: list[Replicate], alpha: float) -> dict[str, Any]:
    """The fraction of analysed runs whose test was significant, with its Monte Carlo
    standard error sqrt(p (1 - p) / R)."""
    analysed = [r for r in replicates if r.error is None]
    runs = len(analysed)
    hits = sum(r.significant(alpha) for r in analysed)
    share = hits / runs if runs else math.nan
    return {
        "replicates": len(replicates),
        "analysed": runs,
        "significant": hits,
        "power": _round(share),
        "mc_se": _round(math.sqrt(share * (1 - share) / runs) if runs else math.nan),
        "seeds": [r.seed for r in replicates],
        **(
            {"errors": sorted({r.error for r in replicates if r.error})}
            if runs < len(replicates)
            else {}
        ),
    }


def _agreement(simulated: dict[str, Any], formula: float) -> dict[str, Any]:
    difference = simulated["power"] - formula
    se = simulated["mc_se"]
    return {
        "difference": _round(difference),
        "mc_se": se,
        # With p near 0 or 1 the estimated MC SE is 0; a run more or less is the resolution.
        "within_3_mc_se": bool(abs(difference) <= 3 * max(se, 1 / simulated["analysed"])),
    }


def _round(value: float) -> float:
    return round(value, 4) if math.isfinite(value) else value


def outcome_column_for(protocol: Protocol, outcome: str | None) -> str:
    """The export column of the named proximal outcome (default: the protocol's first)."""
    names = [o.name for o in protocol.proximal_outcomes]
    if not names:
        raise ValueError("the protocol declares no proximal outcome to power the trial for")
    name = outcome or names[0]
    if name not in names:
        raise ValueError(f"no proximal outcome {name!r}; the protocol has {names}")
    return OUTCOME_PREFIX + name


def declared_effects(protocol: Protocol, behaviour: Behaviour, column: str) -> list[dict[str, Any]]:
    """The behaviour model's true effects on the outcome's EMA item, for comparison with
    the estimate (the simulator keeps answers on the item's scale, which can shrink them)."""
    name = column.removeprefix(OUTCOME_PREFIX)
    outcome = next(o for o in protocol.proximal_outcomes if o.name == name)
    if not isinstance(outcome, EmaOutcome):
        return []
    item = outcome.item.split(".", 1)[1]
    return [e.model_dump(exclude_none=True) for e in behaviour.effects if e.item == item]


def power_section(
    protocol_source: str,
    protocol: Protocol,
    behaviour: Behaviour,
    *,
    participants: int,
    days: int,
    seed: int,
    replicates: int = 20,
    outcome: str | None = None,
    alpha: float = 0.05,
    check: bool = True,
    first: Replicate | None = None,
    max_participants: int = 1000,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """The report's ``power`` section. ``first`` is the analysed run the caller already
    made (the one the report describes), counted as the first of the ``replicates``."""
    if replicates < 1:
        raise ValueError("replicates must be at least 1")
    started = time.perf_counter()
    column = outcome_column_for(protocol, outcome)
    say = progress or (lambda _message: None)

    def runs(n: int, seeds: list[int], done: int = 0) -> list[Replicate]:
        """Simulated trials of n participants, one a seed (``done`` already made)."""
        made = []
        for i, s in enumerate(seeds, start=done + 1):
            say(f"power: simulating {n} participants x {days} days, trial {i} of {replicates}")
            made.append(
                run_replicate(
                    protocol_source,
                    behaviour,
                    participants=n,
                    days=days,
                    seed=s,
                    outcome_column=column,
                )
            )
        return made

    at_n = [first] if first is not None else []
    at_n += runs(participants, [seed + i for i in range(len(at_n), replicates)], len(at_n))
    design, standardized, residual_sd = design_from(at_n, days)
    formula_power = power.power(design, participants, alpha)
    simulated = simulated_power(at_n, alpha)
    errors = [r.std_error for r in at_n if r.std_error is not None]
    section: dict[str, Any] = {
        "outcome": column,
        "test": "WCLS, fully marginal effect (no moderators, no controls), F(1, N - 2)",
        "alpha": alpha,
        "target_power": TARGET_POWER,
        "inputs": {
            "days": days,
            "decision_points_per_day": design.occasions_per_day,
            "mean_availability": _round(float(design.availability.mean())),
            "availability_by_day": [
                _round(float(v))
                for v in design.availability.reshape(days, -1).sum(axis=1)
                / design.occasions_per_day
            ],
            "mean_probability": _round(_weighted_probability(design)),
            "estimate": _round(
                float(np.mean([r.estimate for r in at_n if r.estimate is not None]))
            ),
            "residual_sd": _round(residual_sd),
            "standardized_effect": _round(standardized),
            "declared_effects": declared_effects(protocol, behaviour, column),
            "from_replicates": simulated["analysed"],
        },
        "at_simulated_n": {
            "participants": participants,
            "formula": _round(formula_power),
            "simulation": simulated,
            "agreement": _agreement(simulated, formula_power),
            "standard_error": {
                "formula": _round(residual_sd * power.standard_error(design, participants)),
                "simulation_mean": _round(float(np.mean(errors))) if errors else None,
            },
        },
    }
    try:
        needed = power.sample_size(design, TARGET_POWER, alpha, max_participants=max_participants)
    except ValueError as exc:
        section["needed"] = {"participants": None, "reason": str(exc)}
    else:
        needed_section: dict[str, Any] = {
            "participants": needed,
            "formula": _round(power.power(design, needed, alpha)),
        }
        if check:
            checked = runs(needed, [seed + CHECK_SEED_OFFSET + i for i in range(replicates)])
            needed_section["simulation"] = simulated_power(checked, alpha)
            needed_section["agreement"] = _agreement(
                needed_section["simulation"], needed_section["formula"]
            )
        section["needed"] = needed_section
    section["seconds"] = round(time.perf_counter() - started, 1)
    return section


def _weighted_probability(design: power.MrtDesign) -> float:
    weight = design.availability
    total = float(weight.sum())
    return float((weight * design.probability).sum() / total) if total > 0 else math.nan


def summary_line(section: dict[str, Any]) -> str:
    """One line for the terminal."""
    at = section["at_simulated_n"]
    simulated = at["simulation"]
    line = (
        f"power at {at['participants']} participants: formula {at['formula']:.2f}, "
        f"simulation {simulated['power']:.2f} ± {simulated['mc_se']:.2f} "
        f"({simulated['analysed']} runs)"
    )
    needed = section["needed"]
    if needed["participants"] is None:
        return line + f"; 80% power: {needed['reason']}"
    line += f"; 80% power needs {needed['participants']} participants (formula)"
    if "simulation" in needed:
        s = needed["simulation"]
        line += f", simulated there: {s['power']:.2f} ± {s['mc_se']:.2f}"
    return line
