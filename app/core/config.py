"""Settings, read from the environment with the ``KAIROS_`` prefix (and a ``.env`` file)."""

import itertools
import math
from collections import Counter
from enum import StrEnum
from functools import lru_cache
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# The development default. It is public (it is in this file), so it must never protect
# real data: outside development the service refuses to start while it is in use.
INSECURE_DEFAULT_SECRET = "kairos-development-secret-do-not-use-in-production"  # noqa: S105
MIN_SECRET_LENGTH = 32
# Estimated bits of randomness a secret key must have (see secret_strength_bits). Set so
# that every 128-bit key from a standard generator passes (32 hex characters, the
# weakest, score 95 at the lowest in 20,000 draws; token_urlsafe(48) scores about 330),
# while keys typed by a person (repeats, runs, a word) score far below.
MIN_SECRET_BITS = 80


def _shannon_bits_per_symbol(symbols: list[int]) -> float:
    counts = Counter(symbols)
    n = len(symbols)
    return -sum(c / n * math.log2(c / n) for c in counts.values()) if n else 0.0


def secret_strength_bits(secret: str) -> float:
    """A conservative estimate of the randomness in ``secret``, in bits.

    1. Repetition adds nothing: only the shortest unit that the key repeats counts
       ("abcabcabc" is scored as "abc").
    2. That unit scores its length times the Shannon entropy of its characters (the bits
       each character carries given how often each occurs: "aaaa" scores 0) ...
    3. ... or of the steps between consecutive characters, whichever is lower, so that
       runs score low too ("0123456789abcdef" steps by 1 each time: close to 0).

    It cannot recognise words ("correcthorsebatterystaple" scores like random letters):
    generate the key, never type it.
    """
    unit = secret
    for period in range(1, len(secret) // 2 + 1):
        if all(secret[i] == secret[i % period] for i in range(period, len(secret))):
            unit = secret[:period]
            break
    points = [ord(c) for c in unit]
    steps = [b - a for a, b in itertools.pairwise(points)]
    per_symbol = min(_shannon_bits_per_symbol(points), _shannon_bits_per_symbol(steps))
    return max(0.0, len(unit) * per_symbol)


class Environment(StrEnum):
    development = "development"
    test = "test"
    production = "production"


class UnsafeSettingsError(ValueError):
    """The settings would run the service unsafely; the message says what to set."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="KAIROS_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    environment: Environment = Field(
        Environment.development,
        description="development, test or production. Outside development the secret "
        "key must be set to a strong value.",
    )
    database_url: str = Field(
        "sqlite:///./kairos.db",
        description="SQLAlchemy URL: sqlite:///path.db (embedded default) or "
        "postgresql+psycopg://user:password@host:5432/dbname.",
    )
    secret_key: str = Field(
        INSECURE_DEFAULT_SECRET,
        description="Keys the hashes of enrollment codes. Outside development at least 32 "
        "characters and random (repeats, runs like 0123… and single characters are refused); "
        "generate one with: "
        "python -c 'import secrets; print(secrets.token_urlsafe(48))'",
    )
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    auto_migrate: bool | None = Field(
        None,
        description="Upgrade the database schema when the service starts. Default: on for "
        "SQLite, off for PostgreSQL (run `kairos migrate` as a release step).",
    )
    run_worker: bool | None = Field(
        None,
        description="Run the background worker inside the API process. Default: on for "
        "SQLite (one process owns the file), off for PostgreSQL (run `kairos worker`).",
    )
    worker_tick_seconds: float = Field(5.0, gt=0)
    enrollment_code_ttl_hours: int = Field(14 * 24, ge=1)
    db_pool_size: int = Field(10, ge=1)
    malloc_arena_max: int = Field(
        2,
        ge=0,
        description="Cap on glibc's malloc arenas in the API process, so that memory freed "
        "after a burst can go back to the system (see docs/deployment.md); 0 leaves glibc's "
        "default. An explicit "
        "MALLOC_ARENA_MAX in the environment takes precedence.",
    )
    malloc_trim_seconds: float = Field(
        10.0,
        ge=0,
        description="How often the API process hands memory freed in the middle of glibc's "
        "heaps back to the system (malloc_trim); 0: never.",
    )
    export_dir: str = Field(
        "./exports",
        description="Where background export bundles are written. With several processes "
        "it must be storage that API and worker processes share.",
    )
    log_level: str = "info"
    log_format: Literal["text", "json"] = Field(
        "text",
        description="text: readable lines; json: one JSON object per line (time, level, "
        "logger, message, request_id, exc_info) for log shippers.",
    )
    metrics: Literal["off", "protected"] | Annotated[int, Field(ge=1, le=65535)] = Field(
        "protected",
        description="Prometheus metrics: protected (GET /metrics on the API, for the "
        "KAIROS_METRICS_TOKEN bearer token or an admin API key), a port number (served "
        "without credentials on that port only, not on the API), or off. See "
        "docs/deployment.md.",
    )
    metrics_token: SecretStr | None = Field(
        None,
        description="A bearer token that may read GET /metrics (give it to Prometheus "
        "instead of an admin key). Unset: only admin API keys may.",
    )
    metrics_query_timeout_seconds: float = Field(
        2.0,
        gt=0,
        le=60,
        description="How long a scrape may spend reading state from the database (outbox, "
        "due work, flags, alerts, jobs); past it the scrape reports kairos_database_up 0.",
    )
    max_request_bytes: int = Field(
        10 * 1024 * 1024,
        ge=1024,
        description="Largest request body accepted, in bytes; larger requests get a 413 "
        "naming the limit.",
    )
    max_batch_items: int = Field(
        5000,
        ge=1,
        description="Most items one ingestion batch (EMA responses, wearable summaries, "
        "engagement events) may hold; larger batches get a 413 naming the limit.",
    )
    clock_skew_minutes: int = Field(
        10,
        ge=0,
        le=24 * 60,
        description="How far a phone's clock may be off: timestamps later than now plus "
        "this, or earlier than enrollment minus this, are rejected.",
    )
    alert_webhook_url: str | None = Field(
        None,
        description="Escalation alerts are POSTed here as JSON (retried with backoff until "
        "delivered). Unset: alerts are only listed in the API.",
    )
    alert_webhook_secret: str | None = Field(
        None,
        description="When set, each webhook request carries X-Kairos-Signature: "
        "sha256=<HMAC-SHA256 of the body with this secret>.",
    )
    alert_webhook_timeout_seconds: float = Field(5.0, gt=0, le=60)
    alert_webhook_max_attempts: int = Field(
        10, ge=1, le=50, description="Give up on a webhook delivery after this many attempts."
    )
    fcm_credentials_file: str | None = Field(
        None,
        description="Path to the Firebase service-account JSON file. With neither this nor "
        "KAIROS_FCM_CREDENTIALS_JSON set, pushes go to the logging provider (logged only).",
    )
    fcm_credentials_json: SecretStr | None = Field(
        None, description="The Firebase service-account JSON itself (e.g. from a secret store)."
    )
    fcm_project_id: str | None = Field(
        None, description="Firebase project id (default: the one in the service account)."
    )
    fcm_endpoint: str | None = Field(
        None,
        description="Tests and benchmarks only: send to a fake FCM server at this base URL "
        "(http://127.0.0.1:PORT) without credentials. Refused outside development and test.",
    )
    push_batch_size: int = Field(500, ge=1, le=500)
    push_max_attempts: int = Field(6, ge=1, le=20)
    schedule_batch_size: int = Field(500, ge=1, le=1000)
    lease_seconds: float = Field(120.0, gt=0)
    hsts_seconds: int = Field(
        0,
        ge=0,
        description="When above 0, every response carries Strict-Transport-Security: "
        "max-age=<this>, so browsers only ever use HTTPS. Set it (e.g. 31536000, a year) "
        "when clients reach the service over HTTPS only, e.g. behind a TLS-terminating "
        "proxy; leave 0 while it is served over plain HTTP.",
    )
    forwarded_allow_ips: str = Field(
        "127.0.0.1",
        description="Comma-separated addresses or networks (CIDR) of the proxies whose "
        "X-Forwarded-For and X-Forwarded-Proto headers are believed: the client address "
        "(enrollment throttling, logs) is then the one the proxy saw. '*' trusts every "
        "peer (only when nothing but the proxy can reach the service); '' trusts none.",
    )
    enroll_failures_per_address: int = Field(
        10,
        ge=1,
        description="Failed enrollment attempts (unknown, used or expired codes) one client "
        "address may make per throttle window; then POST /v1/enroll answers 429 with "
        "Retry-After until the window ends, without checking the code.",
    )
    enroll_failures_global: int = Field(
        1000,
        ge=1,
        description="Failed enrollment attempts from all addresses together per throttle "
        "window (a guesser with many addresses); then every enrollment answers 429 until "
        "the window ends.",
    )
    enroll_throttle_window_seconds: int = Field(
        900, ge=1, le=86400, description="The enrollment throttle's window, in seconds."
    )
    throttle_storage_url: str = Field(
        "memory://",
        description="Where throttle counters are kept (a `limits` storage URL): memory:// "
        "counts in each process; with several API processes use shared storage, e.g. "
        "redis://host:6379/0, so the budgets hold across them.",
    )

    @field_validator("metrics", mode="before")
    @classmethod
    def _metrics_port(cls, value: object) -> object:
        # From the environment a port arrives as a string.
        if isinstance(value, str) and value.strip().isdigit():
            return int(value)
        return value

    @property
    def metrics_port(self) -> int | None:
        return self.metrics if isinstance(self.metrics, int) else None

    def unsafe_reason(self) -> str | None:
        """Why these settings must not run a service, or None when they are safe enough."""
        if self.fcm_endpoint and self.environment is Environment.production:
            return (
                "KAIROS_FCM_ENDPOINT points pushes at a fake FCM server without credentials; "
                "it is for tests and benchmarks only. Unset it and set "
                "KAIROS_FCM_CREDENTIALS_FILE (or _JSON) instead."
            )
        if self.environment is Environment.development:
            return None
        weakness = None
        if self.secret_key == INSECURE_DEFAULT_SECRET:
            weakness = "is unset (the public development default)"
        elif len(self.secret_key) < MIN_SECRET_LENGTH:
            weakness = f"is shorter than {MIN_SECRET_LENGTH} characters"
        elif (bits := secret_strength_bits(self.secret_key)) < MIN_SECRET_BITS:
            weakness = (
                f"looks typed rather than random (about {bits:.0f} bits of randomness, at "
                f"least {MIN_SECRET_BITS} needed: it repeats, runs or reuses few characters)"
            )
        if weakness is not None:
            return (
                f"KAIROS_SECRET_KEY {weakness} while KAIROS_ENVIRONMENT={self.environment}. "
                f"Set KAIROS_SECRET_KEY to a random value of at least {MIN_SECRET_LENGTH} "
                "characters, e.g. the output of: "
                "python -c 'import secrets; print(secrets.token_urlsafe(48))'"
            )
        return None

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def should_auto_migrate(self) -> bool:
        return self.is_sqlite if self.auto_migrate is None else self.auto_migrate

    @property
    def should_run_worker(self) -> bool:
        return self.is_sqlite if self.run_worker is None else self.run_worker


def load_settings() -> Settings:
    """Settings from the environment, refused with UnsafeSettingsError when unsafe."""
    settings = Settings()
    reason = settings.unsafe_reason()
    if reason is not None:
        raise UnsafeSettingsError(reason)
    return settings


@lru_cache
def get_settings() -> Settings:
    return load_settings()
