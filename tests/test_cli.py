"""The `kairos` command line: API keys and protocol files (offline where it can be)."""

import json
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from typer.testing import CliRunner

from app.cli import _api_processes, cli
from app.core.config import Settings
from app.protocols.example_files import CHRONIC_PAIN_JITAI, MINIMAL, examples_dir
from app.protocols.models import ProtocolVersion
from tests.conftest import World

runner = CliRunner()


def test_validate_accepts_the_examples() -> None:
    for name in (CHRONIC_PAIN_JITAI, MINIMAL):
        result = runner.invoke(cli, ["protocol", "validate", str(examples_dir() / name)])
        assert result.exit_code == 0, result.output
        assert "valid" in result.output


def test_validate_lists_every_problem_and_exits_1(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    text = (examples_dir() / MINIMAL).read_text().replace('when: "true"', 'when: "painn > 3"')
    bad.write_text(text.replace("Europe/Berlin", "Europe/Atlantis"))
    result = runner.invoke(cli, ["protocol", "validate", str(bad)])
    assert result.exit_code == 1
    assert "policy.rules[0].when: undefined variable 'painn'" in result.output
    assert "study.default_timezone" in result.output
    assert "2 problem(s)" in result.output


def test_schema_is_json_schema() -> None:
    result = runner.invoke(cli, ["protocol", "schema"])
    assert result.exit_code == 0
    schema = json.loads(result.output)
    assert schema["$schema"].startswith("https://json-schema.org/")
    assert "policy" in schema["properties"]


def test_upload_stores_the_next_version(world: World, database_url: str, engine: Engine) -> None:
    study = world.study(slug="cli-upload")
    env = {"KAIROS_DATABASE_URL": database_url}
    path = str(examples_dir() / MINIMAL)
    first = runner.invoke(cli, ["protocol", "upload", "--study", "cli-upload", path], env=env)
    assert first.exit_code == 0, first.output
    assert "version 1" in first.output
    second = runner.invoke(
        cli, ["protocol", "upload", "--study", "cli-upload", "--activate", path], env=env
    )
    assert "version 2 of cli-upload (active version: 2)" in second.output
    with engine.connect() as conn:
        versions = conn.scalars(
            sa.select(ProtocolVersion.version).where(
                ProtocolVersion.study_id == uuid.UUID(study["id"])
            )
        ).all()
    assert sorted(versions) == [1, 2]
    missing = runner.invoke(cli, ["protocol", "upload", "--study", "nope", path], env=env)
    assert missing.exit_code == 2


def test_create_api_key_prints_a_key_that_works(world: World, database_url: str) -> None:
    result = runner.invoke(
        cli,
        ["create-api-key", "--role", "researcher", "--name", "analysis laptop"],
        env={"KAIROS_DATABASE_URL": database_url},
    )
    assert result.exit_code == 0, result.output
    key = result.output.strip().splitlines()[-1]
    assert key.startswith("ksk_")
    headers = {"Authorization": f"Bearer {key}"}
    assert world.client.get("/v1/studies", headers=headers).status_code == 200
    assert world.client.post("/v1/studies", json={}, headers=headers).status_code == 403


def test_commands_refuse_an_old_schema(tmp_path: Path) -> None:
    empty = f"sqlite:///{tmp_path / 'empty.db'}"
    result = runner.invoke(
        cli, ["create-api-key", "--role", "admin"], env={"KAIROS_DATABASE_URL": empty}
    )
    assert result.exit_code == 2
    assert "kairos migrate" in result.output


def test_export_writes_the_file_and_its_dictionary(
    world: World, database_url: str, tmp_path: Path
) -> None:
    study = world.study(slug="cli-export")
    world.participant(study["id"])
    output = tmp_path / "participants.csv"
    result = runner.invoke(
        cli,
        ["export", "--study", "cli-export", "--dataset", "participants", "--output", str(output)],
        env={"KAIROS_DATABASE_URL": database_url},
    )
    assert result.exit_code == 0, result.output
    lines = output.read_text().splitlines()
    assert lines[0].startswith("participant_id,participant_code,")
    assert len(lines) == 2
    sidecar = json.loads((tmp_path / "participants.csv.dictionary.json").read_text())
    assert sidecar["provenance"]["exported_by"] == "cli"
    bad = runner.invoke(
        cli,
        ["export", "--study", "cli-export", "--dataset", "nope", "--output", str(output)],
        env={"KAIROS_DATABASE_URL": database_url},
    )
    assert bad.exit_code == 1
    assert "ema_answers" in bad.output


POSTGRES = "postgresql+psycopg://kairos@db.internal:5432/kairos"


def test_several_api_processes_with_memory_throttle_storage_are_warned_about(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """memory:// counts per process: --workers 4 gives a guesser four times the budget."""
    settings = Settings(_env_file=None, database_url=POSTGRES)
    assert _api_processes(settings, 4) == 4
    warning = capsys.readouterr().err
    assert "memory://" in warning
    assert "4 times" in warning
    assert "KAIROS_THROTTLE_STORAGE_URL=redis://" in warning


@pytest.mark.parametrize(
    ("database_url", "storage", "workers"),
    [
        (POSTGRES, "memory://", 1),  # one process: its memory is the whole budget
        (POSTGRES, "redis://redis.internal:6379/0", 4),  # shared storage
    ],
)
def test_no_throttle_warning_when_the_budget_holds(
    capsys: pytest.CaptureFixture[str], database_url: str, storage: str, workers: int
) -> None:
    settings = Settings(_env_file=None, database_url=database_url, throttle_storage_url=storage)
    assert _api_processes(settings, workers) == workers
    assert capsys.readouterr().err == ""


def test_sqlite_serves_with_one_process(capsys: pytest.CaptureFixture[str]) -> None:
    settings = Settings(_env_file=None, database_url="sqlite:///./kairos.db")
    assert _api_processes(settings, 4) == 1
    assert "need PostgreSQL" in capsys.readouterr().err
