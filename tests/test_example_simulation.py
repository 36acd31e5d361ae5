"""The shipped example protocol through its own simulation (issue 14, item 7): with the
shipped behaviour model, no rule that never fires, no participant-day over either limit,
and decisions on the enrollment day. docs/protocols.md tells what the simulation fixed."""

from pathlib import Path

from app.protocols.example_files import CHRONIC_PAIN_JITAI, example_text
from app.protocols.loading import parse_protocol
from app.protocols.warnings import protocol_warnings
from app.simulation.behaviour import load_behaviour
from app.simulation.report import build_report
from app.simulation.runner import simulate

BEHAVIOUR = Path(__file__).parent.parent / "examples" / "simulation" / "chronic_pain_behaviour.yaml"


def test_the_example_runs_clean_through_its_own_simulation() -> None:
    source = example_text(CHRONIC_PAIN_JITAI)
    assert protocol_warnings(parse_protocol(source)) == []
    # 35 days: past the SMART re-randomization at day 28, five Sundays, two DST changes.
    sim = simulate(source, participants=10, days=35, seed=14, behaviour=load_behaviour(BEHAVIOUR))
    try:
        report = build_report(sim)
    finally:
        sim.close()
    assert report["rules"]["never_fired"] == []
    assert report["burden"]["participant_days_over_cap"] == {"interventions": 0, "all_pushes": 0}
    assert report["burden"]["pushes_per_participant_day"]["total"]["max"] <= 6
    enrollment_day = report["availability"]["by_study_day"][0]
    assert enrollment_day["study_day"] == 0
    assert enrollment_day["rate"] > 0.5
    # The SMART re-randomization at day 28 moved non-responders (at least) to their tracks.
    assert "stage_2/intensify" in report["smart"]
