import pytest
from typer.testing import CliRunner

from app.cli import cli
from app.core.config import (
    INSECURE_DEFAULT_SECRET,
    Environment,
    Settings,
    UnsafeSettingsError,
    load_settings,
)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("KAIROS_ENVIRONMENT", "KAIROS_SECRET_KEY"):
        monkeypatch.delenv(name, raising=False)


def test_defaults_run_on_embedded_sqlite(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KAIROS_DATABASE_URL", raising=False)
    settings = Settings(_env_file=None)
    assert settings.environment is Environment.development
    assert settings.database_url == "sqlite:///./kairos.db"
    assert settings.should_auto_migrate
    assert settings.should_run_worker


def test_postgres_url_switches_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAIROS_DATABASE_URL", "postgresql+psycopg://u@db:5432/kairos")
    settings = Settings(_env_file=None)
    assert not settings.is_sqlite
    assert not settings.should_auto_migrate
    assert not settings.should_run_worker


@pytest.mark.parametrize("environment", ["production", "test"])
@pytest.mark.parametrize("secret", [None, "short-secret"])
def test_unsafe_secret_is_refused_outside_development(
    monkeypatch: pytest.MonkeyPatch, environment: str, secret: str | None
) -> None:
    monkeypatch.setenv("KAIROS_ENVIRONMENT", environment)
    if secret is not None:
        monkeypatch.setenv("KAIROS_SECRET_KEY", secret)
    with pytest.raises(UnsafeSettingsError, match="Set KAIROS_SECRET_KEY"):
        load_settings()


def test_strong_secret_is_accepted_in_production(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAIROS_ENVIRONMENT", "production")
    monkeypatch.setenv("KAIROS_SECRET_KEY", "s" * 48)
    assert load_settings().secret_key == "s" * 48


def test_development_tolerates_the_default_secret() -> None:
    assert load_settings().secret_key == INSECURE_DEFAULT_SECRET


def test_app_factory_refuses_too(monkeypatch: pytest.MonkeyPatch) -> None:
    from app.api.main import create_app

    monkeypatch.setenv("KAIROS_ENVIRONMENT", "production")
    with pytest.raises(UnsafeSettingsError):
        create_app()


def test_serve_refuses_to_start_and_says_what_to_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAIROS_ENVIRONMENT", "production")
    result = CliRunner().invoke(cli, ["serve"])
    assert result.exit_code == 2
    assert "Refusing to start" in result.output
    assert "KAIROS_SECRET_KEY" in result.output
