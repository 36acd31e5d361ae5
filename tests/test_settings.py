import secrets
import uuid
from collections.abc import Callable

import pytest
from typer.testing import CliRunner

from app.cli import cli
from app.core.config import (
    INSECURE_DEFAULT_SECRET,
    MIN_SECRET_BITS,
    Environment,
    Settings,
    UnsafeSettingsError,
    load_settings,
    secret_strength_bits,
)
from tests.conftest import TEST_SECRET

STRONG_SECRET = "Jx8v2Q-pN4rTq0wZbK7mYc3LhF9sGd1A_eU5oR6iVnPa"


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
    monkeypatch.setenv("KAIROS_SECRET_KEY", STRONG_SECRET)
    assert load_settings().secret_key == STRONG_SECRET


@pytest.mark.parametrize(
    "secret",
    [
        "a" * 32,
        "s" * 48,
        "abc" * 16,
        "0123456789" * 4,
        "0123456789abcdefghijklmnopqrstuvwxyz",
        "zyxwvutsrqponmlkjihgfedcba9876543210",
        "password1" * 4,
        "Kairos2026!" * 3,
        "abababababababababababababababab" + "cdcdcdcd",
    ],
)
def test_long_but_low_entropy_secret_is_refused(
    monkeypatch: pytest.MonkeyPatch, secret: str
) -> None:
    assert len(secret) >= 32
    assert secret_strength_bits(secret) < MIN_SECRET_BITS
    monkeypatch.setenv("KAIROS_ENVIRONMENT", "production")
    monkeypatch.setenv("KAIROS_SECRET_KEY", secret)
    with pytest.raises(UnsafeSettingsError, match="looks typed rather than random"):
        load_settings()


@pytest.mark.parametrize(
    "generate",
    [
        lambda: secrets.token_hex(16),  # 128 bits in the fewest characters accepted
        lambda: secrets.token_urlsafe(24),
        lambda: str(uuid.uuid4()),
        lambda: secrets.token_urlsafe(48),  # what the docs and the error message suggest
    ],
    ids=["token_hex(16)", "token_urlsafe(24)", "uuid4", "token_urlsafe(48)"],
)
def test_generated_secrets_are_accepted(generate: Callable[[], str]) -> None:
    for _ in range(2000):
        secret = generate()
        assert secret_strength_bits(secret) >= MIN_SECRET_BITS, secret


def test_the_test_suites_secrets_are_strong() -> None:
    assert secret_strength_bits(TEST_SECRET) >= MIN_SECRET_BITS
    assert (
        Settings(environment=Environment.production, secret_key=TEST_SECRET).unsafe_reason() is None
    )
    assert secret_strength_bits(STRONG_SECRET) >= MIN_SECRET_BITS


def test_strength_ignores_repetition_and_runs() -> None:
    assert secret_strength_bits("a" * 64) == 0
    assert secret_strength_bits("xyz" * 20) == secret_strength_bits("xyz")
    # Steps of one character at a time carry no information whatever the letters.
    assert secret_strength_bits("bcdefghijklmnopqrstuvwxyz") == 0


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
