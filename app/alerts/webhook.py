"""Delivering alerts to the care team's webhook: at once, then retried until delivered.

The API tries a new alert right after answering the phone (never inside the request); the
worker's tick retries whatever is still undelivered, with exponential backoff and jitter,
up to a maximum number of attempts. An alert is leased before each attempt
(``app.core.leases``), so the API and any number of workers never post it twice at the
same time, and an alert whose poster died is posted again once its lease lapses.
Delivery is at least once: receivers deduplicate by ``alert_id``.

The payload is pseudonymous and carries no answer values: the care team reads those in
Kairos (`GET /v1/studies/{study_id}/alerts`), not in whatever chat or pager receives it.
"""

import contextlib
import hashlib
import hmac
import json
import logging
import random
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from app.alerts.models import Alert, WebhookStatus
from app.core.channels import Channel
from app.core.clock import Clock
from app.core.config import Settings
from app.core.db import session_scope
from app.core.leases import LeasedTable, claim, retake
from app.core.metrics import WEBHOOK_ATTEMPTS
from app.core.retry import Backoff
from app.participants.models import Participant

logger = logging.getLogger(__name__)

RETRIES = Backoff(first=timedelta(seconds=30), longest=timedelta(hours=1), jitter=(0.5, 1.5))
# How long an attempt holds its claim: past this, another process may try again.
LEASE_MARGIN = timedelta(seconds=60)
BATCH = 50


@dataclass(frozen=True)
class WebhookConfig:
    url: str
    timeout_seconds: float
    max_attempts: int
    secret: str | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> "WebhookConfig | None":
        if not settings.alert_webhook_url:
            return None
        return cls(
            url=settings.alert_webhook_url,
            timeout_seconds=settings.alert_webhook_timeout_seconds,
            max_attempts=settings.alert_webhook_max_attempts,
            secret=settings.alert_webhook_secret,
        )


@dataclass(frozen=True)
class WebhookMessage:
    alert_id: uuid.UUID
    body: bytes  # the JSON payload, signed as sent


@dataclass(frozen=True)
class WebhookResult:
    error: str | None = None  # None: the receiver took it


WebhookChannel = Channel[WebhookMessage, WebhookResult]


class HttpWebhookChannel:
    """POSTs each alert to the configured URL, signed with HMAC-SHA256 when a secret is set."""

    name = "webhook"
    max_batch = 1

    def __init__(self, config: WebhookConfig) -> None:
        self._config = config
        self._client = httpx.Client(timeout=config.timeout_seconds)

    def __enter__(self) -> "HttpWebhookChannel":
        return self

    def __exit__(self, *exc: object) -> None:
        self._client.close()

    def send(self, messages: Sequence[WebhookMessage]) -> list[WebhookResult]:
        return [WebhookResult(self._post(m.alert_id, m.body)) for m in messages]

    def _post(self, alert_id: uuid.UUID, body: bytes) -> str | None:
        headers = {"Content-Type": "application/json", "X-Kairos-Alert-Id": str(alert_id)}
        if self._config.secret:
            digest = hmac.new(self._config.secret.encode(), body, hashlib.sha256).hexdigest()
            headers["X-Kairos-Signature"] = f"sha256={digest}"
        try:
            response = self._client.post(self._config.url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            return f"{type(exc).__name__}: {exc}"[:500]
        if response.is_success:
            return None
        return f"HTTP {response.status_code}: {response.text[:200]}"


def retry_delay(attempts: int, rng: random.Random) -> timedelta:
    """Exponential backoff (30 s, 1 min, 2 min … at most 1 h) with ±50% jitter."""
    return RETRIES.delay(attempts, rng)


def payload(alert: Alert, participant_code: str) -> dict[str, Any]:
    return {
        "type": "kairos.alert",
        "alert_id": str(alert.id),
        "study_id": str(alert.study_id),
        "participant_id": str(alert.participant_id),
        "participant_code": participant_code,
        "questionnaire_id": alert.questionnaire_id,
        "item_id": alert.item_id,
        "severity": alert.severity,
        "message": alert.message,
        "response_id": str(alert.response_id) if alert.response_id else None,
        "answered_at": alert.answered_at.isoformat(),
        "created_at": alert.created_at.isoformat(),
        "attempt": alert.webhook_attempts,
    }


# Alerts wait (pending) until their next attempt time, are held (sending) by one process
# while it posts, then are delivered, failed, or pending again for a retry.
ALERT_WEBHOOKS = LeasedTable(
    model=Alert,
    waiting=WebhookStatus.pending,
    held=WebhookStatus.sending,
    order_by=Alert.webhook_next_attempt_at,
    ready=lambda now: Alert.webhook_next_attempt_at <= now,
    status_column=Alert.webhook_status,
    owner_column=Alert.webhook_lease_owner,
    expires_column=Alert.webhook_lease_expires_at,
)


def deliver_due(
    session_factory: sessionmaker[Session],
    clock: Clock,
    config: WebhookConfig,
    *,
    alert_ids: Sequence[uuid.UUID] | None = None,
    rng: random.Random | None = None,
    channel: WebhookChannel | None = None,
) -> int:
    """Try every alert whose delivery is due (or only ``alert_ids``) through ``channel`` (by
    default an HTTP client for ``config``), one at a time, each leased while it is posted;
    returns how many arrived."""
    rng = rng or random.Random()  # noqa: S311 - jitter, not security
    owner = f"webhook-{uuid.uuid4()}"
    lease = timedelta(seconds=config.timeout_seconds) + LEASE_MARGIN
    delivered = 0
    with contextlib.ExitStack() as stack:
        if channel is None:
            channel = stack.enter_context(HttpWebhookChannel(config))
        for _ in range(BATCH):
            claimed = _claim(session_factory, clock, owner, lease, alert_ids)
            if claimed is None:
                break  # nothing due, or every due alert is held by another process
            alert_id, body = claimed
            (result,) = channel.send([WebhookMessage(alert_id, body)])
            _record(session_factory, clock, config, owner, lease, alert_id, result.error, rng)
            WEBHOOK_ATTEMPTS.labels("delivered" if result.error is None else "error").inc()
            delivered += result.error is None
    return delivered


def _claim(
    session_factory: sessionmaker[Session],
    clock: Clock,
    owner: str,
    lease: timedelta,
    alert_ids: Sequence[uuid.UUID] | None,
) -> tuple[uuid.UUID, bytes] | None:
    """Lease the oldest due alert and count the attempt; its id and payload."""
    with session_scope(session_factory) as session:
        ids = claim(session, ALERT_WEBHOOKS, clock.now(), owner, lease, 1, only=alert_ids)
        if not ids:
            return None
        alert = session.get_one(Alert, ids[0])
        alert.webhook_attempts += 1
        code = session.scalar(
            sa.select(Participant.code).where(Participant.id == alert.participant_id)
        )
        return alert.id, json.dumps(payload(alert, code or "")).encode()


def _record(
    session_factory: sessionmaker[Session],
    clock: Clock,
    config: WebhookConfig,
    owner: str,
    lease: timedelta,
    alert_id: uuid.UUID,
    error: str | None,
    rng: random.Random,
) -> None:
    now = clock.now()
    with session_scope(session_factory) as session:
        if not retake(session, ALERT_WEBHOOKS, [alert_id], owner, now, lease):
            logger.warning(
                "alert %s: lease lost while posting; its new holder records it", alert_id
            )
            return
        alert = session.get_one(Alert, alert_id)
        alert.webhook_lease_owner = alert.webhook_lease_expires_at = None
        if error is None:
            alert.webhook_status = WebhookStatus.delivered
            alert.webhook_delivered_at = now
            alert.webhook_next_attempt_at = None
            alert.webhook_last_error = None
            return
        alert.webhook_last_error = error
        if alert.webhook_attempts >= config.max_attempts:
            alert.webhook_status = WebhookStatus.failed
            alert.webhook_next_attempt_at = None
            logger.error(
                "alert %s: webhook failed %d times, giving up: %s",
                alert_id,
                alert.webhook_attempts,
                error,
            )
        else:
            alert.webhook_status = WebhookStatus.pending
            alert.webhook_next_attempt_at = now + retry_delay(alert.webhook_attempts, rng)
            logger.warning(
                "alert %s: webhook attempt %d failed (%s); retrying at %s",
                alert_id,
                alert.webhook_attempts,
                error,
                alert.webhook_next_attempt_at.isoformat(),
            )
