"""Push providers, the delivery channel of the outbox: FCM (app.notifications.fcm) and
logging."""

import logging
import uuid
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from app.core.channels import Channel
from app.notifications.models import AttemptOutcome

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PushMessage:
    """One notification for one device."""

    notification_id: uuid.UUID
    device_id: uuid.UUID
    token: str
    platform: str
    title: str
    body: str
    # String key/values for the app; always carries the notification id to echo back.
    data: dict[str, str]
    collapse_key: str | None
    # Time to live: the prompt's remaining validity (FCM drops it after that).
    ttl: timedelta
    expires_at: datetime | None = None
    high_priority: bool = True


@dataclass(frozen=True)
class PushResult:
    outcome: AttemptOutcome
    error_code: str | None = None
    retry_after_seconds: float | None = None
    # The provider's message id on success, or the error message.
    response: str | None = None
    alert: bool = False  # auth or payload trouble an operator must look at


class PushProvider(Channel[PushMessage, PushResult], Protocol):
    """The channel pushes leave through (FCM, or logging without credentials)."""


RECENT_PUSHES = 1000


@dataclass
class LoggingProvider:
    """The default without FCM credentials: logs each push and accepts it."""

    name: str = "log"
    max_batch: int = 500
    # The latest pushes, for tests and a look in a debugger; bounded, as the worker runs for
    # months.
    sent: deque[PushMessage] = field(default_factory=lambda: deque(maxlen=RECENT_PUSHES))

    def send(self, messages: Sequence[PushMessage]) -> list[PushResult]:
        results = []
        for message in messages:
            logger.info(
                "push (logging provider) to device %s: %s | %s | %s",
                message.device_id,
                message.title,
                message.body,
                message.data,
            )
            self.sent.append(message)
            results.append(
                PushResult(AttemptOutcome.accepted, response=f"logged:{message.notification_id}")
            )
        return results
