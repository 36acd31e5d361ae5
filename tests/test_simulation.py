"""The protocol simulator: the real pipeline for synthetic participants on a virtual clock."""

import csv
import io
import json
import re
import xml.dom.minidom
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from app.cli import cli
from app.protocols.example_files import CHRONIC_PAIN_JITAI, MINIMAL, example_text
from app.simulation.behaviour import DEFAULT_BEHAVIOUR, BehaviourInvalidError, parse_behaviour
from app.simulation.report import build_report, write_outputs
from app.simulation.runner import simulate
from tests.support.decisions import example_document

EXAMPLE = example_text(CHRONIC_PAIN_JITAI)


def _run(tmp_path: Path, seed: int, source: str = EXAMPLE) -> tuple[dict[str, Any], bytes]:
    sim = simulate(source, participants=3, days=3, seed=seed, behaviour=DEFAULT_BEHAVIOUR)
    try:
        report = write_outputs(sim, tmp_path)
    finally:
        sim.close()
    return report, (tmp_path / "decisions.csv").read_bytes()


def test_the_same_seed_gives_the_same_output(tmp_path: Path) -> None:
    first, first_csv = _run(tmp_path / "a", seed=7)
    again, again_csv = _run(tmp_path / "b", seed=7)
    _, other_csv = _run(tmp_path / "c", seed=8)
    assert first == again
    assert first_csv == again_csv
    assert (tmp_path / "a" / "report.json").read_bytes() == (
        tmp_path / "b" / "report.json"
    ).read_bytes()
    assert other_csv != first_csv


def test_the_report_counts_what_the_export_holds(tmp_path: Path) -> None:
    report, data = _run(tmp_path, seed=3)
    rows = list(csv.DictReader(io.StringIO(data.decode())))
    # 3 participants x 3 days x the example's 5 decision points, each logged once.
    assert len(rows) == 3 * 3 * 5
    treated = sum(row["treated"] == "1" for row in rows)
    assert report["burden"]["pushes"]["intervention"] == treated
    delivered: dict[str, int] = {}
    for row in rows:
        if row["action"]:
            delivered[row["action"]] = delivered.get(row["action"], 0) + 1
    assert report["deliveries"]["options"] == dict(sorted(delivered.items()))
    availability = report["availability"]["by_study_day"]
    assert sum(day["decisions"] for day in availability) == len(rows)
    # Available from the enrollment day on (a "days_enrolled >= 1" condition, found by the
    # simulation, is gone from the example).
    assert availability[0]["study_day"] == 0
    assert availability[0]["rate"] > 0
    assert report["ema"]["responses"] > 0  # the phones answered through ingestion


def test_a_rule_behind_an_always_true_rule_is_reported_as_never_fired(tmp_path: Path) -> None:
    document = example_document()
    document["policy"]["rules"].append({"id": "shadowed", "when": "true", "option": "sleep"})
    sim = simulate(
        yaml.safe_dump(document), participants=2, days=2, seed=1, behaviour=DEFAULT_BEHAVIOUR
    )
    try:
        report = build_report(sim)
    finally:
        sim.close()
    assert "shadowed" in report["rules"]["never_fired"]
    fired = report["rules"]["fired"]
    assert fired  # other rules did fire
    assert "shadowed" not in fired
    # Its condition held at every decision a rule decided, each time behind that rule.
    seen = report["rules"]["shadowed"]["shadowed"]
    assert seen == {"condition_held": sum(fired.values()), "shadowed_by": fired}


def test_a_bad_behaviour_model_names_the_field() -> None:
    with pytest.raises(BehaviourInvalidError) as caught:
        parse_behaviour("answering:\n  probability: 1.5\ntimezones: {Mars/Olympus: 1}\nextra: 1\n")
    paths = {path for path, _ in caught.value.problems}
    assert paths == {"answering.probability", "timezones", "extra"}
    assert parse_behaviour("") == DEFAULT_BEHAVIOUR


def test_declared_effects_change_the_answers(tmp_path: Path) -> None:
    # A large true effect of every delivered option on interference the same day: the
    # simulated answers after a delivery are lower than without the effect.
    def mean_interference(behaviour_yaml: str) -> float:
        sim = simulate(
            EXAMPLE,
            participants=4,
            days=4,
            seed=5,
            behaviour=parse_behaviour(behaviour_yaml),
        )
        try:
            with sim.session_factory() as session:
                from sqlalchemy import func, select

                from app.ema.models import EmaAnswer

                value = session.scalar(
                    select(func.avg(EmaAnswer.numeric_value)).where(
                        EmaAnswer.item_id == "interference"
                    )
                )
        finally:
            sim.close()
        assert value is not None
        return float(value)

    options = ["activity_pacing", "cbt_skill", "pain_acceptance", "sleep", "feedback"]
    effects = "effects:\n" + "".join(
        f"  - {{option: {o}, item: interference, shift: -4, hours: 48}}\n" for o in options
    )
    assert mean_interference(effects) < mean_interference("") - 0.5


def test_kairos_simulate_writes_the_report_files(tmp_path: Path) -> None:
    protocol = tmp_path / "protocol.yaml"
    protocol.write_text(EXAMPLE)
    out = tmp_path / "out"
    result = CliRunner().invoke(
        cli,
        ["simulate", str(protocol), "--participants", "2", "--days", "2", "--out", str(out)],
    )
    assert result.exit_code == 0, result.output
    assert "rules that never fired" in result.output
    report = json.loads((out / "report.json").read_text())
    assert report["simulation"]["participants"] == 2
    page = (out / "report.html").read_text()
    assert page.startswith("<!doctype html>")
    # Charts a coordinator reads at a glance, inline: no script, nothing fetched.
    charts = re.findall(r"<svg.*?</svg>", page, re.S)
    assert len(charts) >= 5  # a chart for every figure that has data (2 days: no SMART yet)
    for chart in charts:
        xml.dom.minidom.parseString(chart)  # noqa: S318 - our own output
    assert "<script" not in page
    assert not re.search(r"(src|href)=", page)
    assert "push budget 6" in charts[0]  # the limits drawn against the pushes
    assert (out / "decisions.csv").read_text().startswith("decision_id,")


def test_kairos_simulate_reports_an_invalid_protocol(tmp_path: Path) -> None:
    protocol = tmp_path / "protocol.yaml"
    protocol.write_text("study: {}\n")
    result = CliRunner().invoke(cli, ["simulate", str(protocol), "--out", str(tmp_path / "out")])
    assert result.exit_code == 1
    assert "problem" in result.output


def test_the_mrt_analysis_recovers_the_declared_effect(tmp_path: Path) -> None:
    # Every afternoon a movement prompt with probability 0.5; an evening check-in an hour
    # later; the declared truth: pain 2 points lower within 3 hours of a movement prompt.
    document = yaml.safe_load(example_text(MINIMAL))
    document["ema_schedules"][0]["times"] = ["16:00"]
    document["proximal_outcomes"] = [
        {"name": "next_pain", "source": "ema", "item": "*.pain", "window_minutes_after": 240}
    ]
    behaviour = parse_behaviour(
        "effects: [{option: movement, item: pain, shift: -2, hours: 3}]\n"
        "answering: {probability: 0.95, weekly_change: 0}\n"
    )
    sim = simulate(yaml.safe_dump(document), participants=25, days=14, seed=11, behaviour=behaviour)
    try:
        write_outputs(sim, tmp_path)
    finally:
        sim.close()
    result = CliRunner().invoke(
        cli,
        [
            "analyze",
            "mrt",
            str(tmp_path / "decisions.csv"),
            "--outcome",
            "outcome_next_pain",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    (effect,) = json.loads(result.output)["coefficients"]
    assert effect["ci_low"] <= -2 <= effect["ci_high"], effect
    assert effect["ci_high"] < 0  # and it is told apart from no effect
