"""Protocol warnings: allowed but probably not meant, found from the document alone."""

from pathlib import Path
from typing import Any

import yaml
from typer.testing import CliRunner

from app.cli import cli
from app.protocols.example_files import MINIMAL, example_text
from app.protocols.loading import parse_protocol
from app.protocols.warnings import protocol_warnings
from app.staff.models import Role
from tests.conftest import World
from tests.support.decisions import EXAMPLE, example_document


def _warnings(document: dict[str, Any]) -> dict[str, str]:
    protocol = parse_protocol(yaml.safe_dump(document))
    return {w.path: w.message for w in protocol_warnings(protocol)}


def _as_first_shipped() -> dict[str, Any]:
    """The example as it was before its simulation fixed it (docs/protocols.md, "What the
    simulation found")."""
    document = example_document()
    availability = document["policy"]["availability"]
    availability["conditions"] = ["days_enrolled >= 1"]
    del availability["max_pushes_per_day"]
    for schedule in document["ema_schedules"]:
        if "reminders" in schedule:
            schedule["reminders"]["count"] = 2
    for variable in document["tailoring_variables"]:
        if variable["name"] in ("pain_mean_7d", "pain_baseline"):
            del variable["default"]
    return document


FIRST_SHIPPED = yaml.safe_dump(_as_first_shipped(), sort_keys=False)


def test_the_shipped_example_has_no_warnings() -> None:
    assert protocol_warnings(parse_protocol(EXAMPLE)) == []


def test_the_example_as_first_shipped_gets_the_warnings_the_simulator_confirmed() -> None:
    found = _warnings(_as_first_shipped())
    expected = {
        "tailoring_variables[6].default": "'pain_mean_7d' has no default",
        "tailoring_variables[7].default": "'pain_baseline' has no default",
        "policy.availability.conditions[0]": "enrollment day",
        # 3 EMA prompts, 6 reminders and 3 interventions (the cap), as issue 14 counted.
        "policy.availability.max_prompts_per_day": "12 pushes a day",
    }
    assert set(found) == set(expected)
    assert all(expected[path] in message for path, message in found.items())


def test_a_clean_protocol_has_no_warnings() -> None:
    assert protocol_warnings(parse_protocol(example_text(MINIMAL))) == []


def test_rules_after_an_always_true_rule_are_shadowed() -> None:
    document = example_document()
    rules = document["policy"]["rules"]
    rules.insert(1, {"id": "everyone", "when": "local_hour >= 0", "option": "nothing"})
    found = _warnings(document)
    shadowed = [p for p, m in found.items() if "rule 'everyone' before it" in m]
    assert len(shadowed) == len(rules) - 2  # every rule after 'everyone'
    assert "policy.rules[2].when" in shadowed


def test_a_rule_that_never_holds_is_reported() -> None:
    document = example_document()
    document["policy"]["rules"].insert(
        0, {"id": "never", "when": "local_hour > 23 && weekday == 'mon'", "option": "sleep"}
    )
    assert "never fire" in _warnings(document)["policy.rules[0].when"]


def test_a_fatigue_response_without_a_cap_still_works() -> None:
    # Without max_prompts_per_day the factor scales the decision moments a day (5 -> 2).
    document = example_document()
    del document["policy"]["availability"]["max_prompts_per_day"]
    found = _warnings(document)
    assert "monitoring.fatigue.response" not in found
    assert "policy.availability.max_prompts_per_day" not in found


def test_a_fatigue_response_without_effect_is_reported() -> None:
    document = example_document()
    del document["policy"]["availability"]["max_prompts_per_day"]
    document["decision_points"] = [
        {"id": point["id"], "triggers": [{"event": "ema_submitted"}]}
        for point in document["decision_points"]
    ]
    for schedule in document["ema_schedules"]:
        schedule.pop("droppable", None)
        schedule.pop("reminders", None)
    document["monitoring"]["fatigue"]["response"] = {"prompt_budget_factor": 0.5}
    found = _warnings(document)
    assert "would have no effect" in found["monitoring.fatigue.response"]


def test_defaults_silence_the_missing_data_warning() -> None:
    document = example_document()
    for variable in document["tailoring_variables"]:
        if variable["name"] in ("pain_baseline", "pain_mean_7d"):
            variable["default"] = 5
    found = _warnings(document)
    assert not any(path.startswith("tailoring_variables") for path in found)


def test_the_api_returns_warnings_without_blocking(world: World) -> None:
    staff = {**world.staff(Role.admin), "Content-Type": "application/yaml"}
    checked = world.client.post("/v1/protocols/validate", content=FIRST_SHIPPED, headers=staff)
    assert checked.status_code == 200, checked.text
    paths = {w["path"] for w in checked.json()["warnings"]}
    assert "policy.availability.conditions[0]" in paths
    study = world.study()
    stored = world.client.post(
        f"/v1/studies/{study['id']}/protocols", content=FIRST_SHIPPED, headers=staff
    )
    assert stored.status_code == 201, stored.text
    assert {w["path"] for w in stored.json()["warnings"]} == paths
    clean = world.client.post(
        "/v1/protocols/validate", content=example_text(MINIMAL), headers=staff
    )
    assert clean.json()["warnings"] == []


def test_kairos_protocol_validate_prints_warnings_and_succeeds(tmp_path: Path) -> None:
    path = tmp_path / "protocol.yaml"
    path.write_text(FIRST_SHIPPED)
    result = CliRunner().invoke(cli, ["protocol", "validate", str(path)])
    assert result.exit_code == 0, result.output
    assert "4 warning(s)" in result.output
    assert "policy.availability.conditions[0]" in result.output
