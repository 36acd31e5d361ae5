"""Settings, read from the environment with the ``KAIROS_`` prefix (and a ``.env`` file)."""

import ipaddress
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
# that keys from a standard generator pass (32 hex characters, the weakest accepted form,
# score about 100 typically and 82 at the lowest in a million draws; token_urlsafe(24)
# 127 at the lowest; token_urlsafe(48), the suggested one, over 300), while keys typed by a
# person (repeats, runs, a word) score far below. Keys accepted before this check (length
# only) may now be refused; rotating one voids unused enrollment codes (deployment.md).
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


ProxyNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_trusted_proxies(value: str) -> list[ProxyNetwork]:
    """KAIROS_FORWARDED_ALLOW_IPS as networks (an address is a network of one).

    Refused: ``*`` and networks holding every address (``0.0.0.0/0``, ``::/0``). With them
    uvicorn believes every peer and, finding no untrusted address in X-Forwarded-For, takes
    its leftmost entry, which the client writes itself (nginx's
    ``$proxy_add_x_forwarded_for`` keeps it): anyone could pick an address per attempt and
    never be throttled. Refused too: anything that is not an address or network (uvicorn
    would silently never match it).
    """
    networks: list[ProxyNetwork] = []
    for entry in (part.strip() for part in value.split(",")):
        if not entry:
            continue
        if entry == "*":
            raise ValueError(
                "'*' would believe X-Forwarded-For from every peer, so a client could write "
                "its own address into the header and dodge the enrollment throttle; name the "
                "proxies' addresses or networks instead (e.g. 10.0.0.0/8)"
            )
        try:
            network = ipaddress.ip_network(entry)
        except ValueError:
            raise ValueError(
                f"{entry!r} is not an IP address or network (CIDR such as 10.0.0.0/8, with "
                "no host bits set)"
            ) from None
        if network.prefixlen == 0:
            raise ValueError(
                f"{entry!r} holds every address: like '*', it would let a client pick its own "
                "address; name the proxies' addresses or networks instead"
            )
        networks.append(network)
    return networks


def _secret_weakness(secret: str) -> str | None:
    """Why ``secret`` is too weak to guard anything, or None."""
    if len(secret) < MIN_SECRET_LENGTH:
        return f"is shorter than {MIN_SECRET_LENGTH} characters"
    if (bits := secret_strength_bits(secret)) < MIN_SECRET_BITS:
        return (
            f"looks typed rather than random (about {bits:.0f} bits of randomness, at "
            f"least {MIN_SECRET_BITS} needed: it repeats, runs or reuses few characters)"
        )
    return None


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
        "characters and random (repeats, runs like 0123… and single characters are refused). "
        "Changing it voids enrollment codes not yet used. Generate one with: "
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
    db_pool_timeout_seconds: float = Field(
        10.0,
        ge=0,
        description="How long a request waits for a free database connection of the pool "
        "before it gets a 503; 0: no limit.",
    )
    db_connect_timeout_seconds: float = Field(
        5.0,
        ge=0,
        description="PostgreSQL: how long opening a connection may take (libpq "
        "connect_timeout, at least 2 s) before the request gets a 503; 0: no limit.",
    )
    db_statement_timeout_seconds: float = Field(
        30.0,
        ge=0,
        description="PostgreSQL: the longest one statement may run (statement_timeout) "
        "before it is canceled and the request gets a 503; exports and migrations are "
        "exempt. 0: no limit (e.g. behind PgBouncer in transaction mode: set it on the "
        "database role instead).",
    )
    db_tcp_user_timeout_seconds: float = Field(
        10.0,
        ge=0,
        description="PostgreSQL: how long sent data may stay unacknowledged before the "
        "connection is given up (libpq tcp_user_timeout): bounds a request to a server "
        "that stopped answering (a network partition). 0: the system default (minutes).",
    )
    db_keepalives_idle_seconds: float = Field(
        10.0,
        ge=0,
        description="PostgreSQL: TCP keepalive probes start after this many idle seconds "
        "on a connection (libpq keepalives_idle), so a connection waiting for an answer "
        "from a vanished server is dropped too. 0: no keepalives.",
    )
    db_keepalives_interval_seconds: float = Field(
        5.0, ge=1, description="PostgreSQL: seconds between TCP keepalive probes."
    )
    db_keepalives_count: int = Field(
        3, ge=1, description="PostgreSQL: unanswered keepalive probes before giving up."
    )
    db_retry_after_seconds: int = Field(
        5,
        ge=1,
        description="The Retry-After of a 503 answered while the database is unavailable.",
    )
    sqlite_busy_timeout_seconds: float = Field(
        30.0,
        gt=0,
        description="SQLite: how long a write waits for its turn (writers take turns in "
        "arrival order) before the request gets a 503.",
    )
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
        "instead of an admin key). Unset: only admin API keys may. Outside development "
        "at least 32 random characters, checked like the secret key.",
    )
    metrics_query_timeout_seconds: float = Field(
        2.0,
        gt=0,
        le=60,
        description="How long each query of a scrape may take reading state from the "
        "database (outbox, due work, flags, alerts, jobs; a PostgreSQL statement timeout); "
        "past it the scrape reports kairos_database_up 0. Connecting is bounded by the "
        "database connection's own timeout, not by this.",
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
    smtp_host: str | None = Field(
        None,
        description="SMTP server that care-team e-mails (alert routes with channel `email`) "
        "are sent through. Unset: e-mail routes cannot be configured.",
    )
    smtp_port: int = Field(25, ge=1, le=65535, description="SMTP port (587 with STARTTLS).")
    smtp_from: str = Field("kairos@localhost", description="The From address of care-team e-mails.")
    smtp_starttls: bool = Field(
        False, description="Upgrade the SMTP connection with STARTTLS before logging in."
    )
    smtp_user: str | None = Field(None, description="SMTP login; unset: no authentication.")
    smtp_password: SecretStr | None = Field(None, description="SMTP password for smtp_user.")
    smtp_timeout_seconds: float = Field(10.0, gt=0, le=120)
    care_send_max_attempts: int = Field(
        10,
        ge=1,
        le=50,
        description="Give up on one care-team send (an e-mail or a route's webhook post) "
        "after this many attempts.",
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
        "(enrollment throttling, logs) is then the rightmost one in X-Forwarded-For that "
        "is not a trusted proxy. '' trusts none. '*' and 0.0.0.0/0 are refused: the "
        "client's own entry would be believed.",
    )
    enroll_failures_per_address: int = Field(
        10,
        ge=1,
        description="Failed enrollment attempts (unknown, used or expired codes) one client "
        "address (an IPv6 client: its /64 network) may make per throttle window; then "
        "POST /v1/enroll answers 429 with Retry-After until the window ends, without "
        "checking the code.",
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
    throttle_storage_timeout_seconds: float = Field(
        1.0,
        gt=0,
        le=30,
        description="How long an enrollment waits for the throttle storage to connect and "
        "to answer each command; past it enrollment answers 503 throttle_unavailable.",
    )

    @field_validator("forwarded_allow_ips")
    @classmethod
    def _trusted_proxies(cls, value: str) -> str:
        return ",".join(str(network) for network in parse_trusted_proxies(value))

    @property
    def trusted_proxies(self) -> list[ProxyNetwork]:
        return parse_trusted_proxies(self.forwarded_allow_ips)

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
        if self.secret_key == INSECURE_DEFAULT_SECRET:
            weakness: str | None = "is unset (the public development default)"
        else:
            weakness = _secret_weakness(self.secret_key)
        if weakness is not None:
            return (
                f"KAIROS_SECRET_KEY {weakness} while KAIROS_ENVIRONMENT={self.environment}. "
                f"Set KAIROS_SECRET_KEY to a random value of at least {MIN_SECRET_LENGTH} "
                "characters, e.g. the output of: "
                "python -c 'import secrets; print(secrets.token_urlsafe(48))'"
            )
        # The metrics token is checked on every scrape without a throttle: it must be as
        # hard to guess as the secret key.
        if self.metrics_token is not None and (
            weakness := _secret_weakness(self.metrics_token.get_secret_value())
        ):
            return (
                f"KAIROS_METRICS_TOKEN {weakness} while KAIROS_ENVIRONMENT={self.environment}. "
                f"Set it to a random value of at least {MIN_SECRET_LENGTH} characters, e.g. "
                "the output of: python -c 'import secrets; print(secrets.token_urlsafe(32))', "
                "or unset it (then only admin API keys may read /metrics)"
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
