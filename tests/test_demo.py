"""`kairos demo`: a demo study with a simulated history, so trends, decision histories,
flags and exports have data in them from the first look at /docs."""

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from app.api.main import create_app
from app.cli import cli
from app.core.config import Environment, Settings
from tests.conftest import TEST_SECRET


def test_the_demo_has_weeks_of_simulated_history(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    database = tmp_path / "demo.db"
    monkeypatch.setenv("KAIROS_SECRET_KEY", TEST_SECRET)
    monkeypatch.setenv("KAIROS_DATABASE_URL", "sqlite:///unused.db")  # the command sets its own
    result = CliRunner().invoke(
        cli,
        [
            "demo",
            "--no-serve",
            "--database",
            str(database),
            "--history-days",
            "9",
            "--history-participants",
            "3",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "Simulating 9 days of 3 participants" in result.output
    output = result.output
    credentials = json.loads(output[output.index("{") : output.index("\n}") + 2])
    settings = Settings(
        environment=Environment.test,
        database_url=f"sqlite:///{database}",
        secret_key=TEST_SECRET,
        auto_migrate=False,
        run_worker=False,
        export_dir=str(tmp_path / "exports"),
    )
    admin = {"Authorization": f"Bearer {credentials['api_keys']['admin']}"}
    with TestClient(create_app(settings)) as client:
        studies = client.get("/v1/studies", headers=admin).json()["items"]
        assert [s["slug"] for s in studies] == ["demo-chronic-pain-jitai"]
        study = studies[0]["id"]
        people = client.get(
            f"/v1/studies/{study}/participants", headers=admin, params={"limit": 100}
        ).json()["items"]
        codes = sorted(p["code"] for p in people)
        # The simulated three, and the demo's four (two enrolled, two invited).
        assert codes == ["P-0001", "P-0002", "P-0003", "P-0004", "SIM-0000", "SIM-0001", "SIM-0002"]
        simulated = next(p for p in people if p["code"] == "SIM-0000")
        decisions = client.get(
            f"/v1/studies/{study}/participants/{simulated['id']}/decisions", headers=admin
        )
        assert decisions.status_code == 200, decisions.text
        assert len(decisions.json()["items"]) >= 5 * 8  # five decision points a day
        trends = client.get(
            f"/v1/studies/{study}/participants/{simulated['id']}/trends", headers=admin
        )
        assert trends.status_code == 200, trends.text
        weeks = trends.json()["weeks"]
        assert len(weeks) >= 2
        assert weeks[0]["prompts_answered"] > 0
        assert weeks[0]["means"]["*.pain"] is not None
        export = client.get(f"/v1/studies/{study}/exports/decisions", headers=admin)
        assert export.status_code == 200, export.text
        assert export.text.count("\n") > 3 * 5 * 8
