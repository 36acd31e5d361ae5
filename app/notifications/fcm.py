"""Firebase Cloud Messaging through firebase-admin, with errors classified for the outbox.

Classification (what the sender does with each outcome):

- UNREGISTERED, SENDER_ID_MISMATCH, or INVALID_ARGUMENT about the registration token:
  the token is dead; the device is disabled and the attempt recorded (invalid_token).
- QUOTA_EXCEEDED / RESOURCE_EXHAUSTED, UNAVAILABLE, INTERNAL, network trouble: retried
  later with exponential backoff and jitter, at least the Retry-After the server gave.
- Authentication (APNs/web-push auth, our credentials), permission and other payload
  errors: recorded and alerted (an ERROR log line), not retried.

firebase-admin retries 500/503 inside one call (up to ~7 s of sleeping per message). The
outbox retries durably with backoff instead, so that transport-level status retry is
turned off for the FCM endpoint; connection errors still get one immediate retry.
"""

import email.utils
import logging
import uuid
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import firebase_admin
import requests.adapters
import requests.utils
from firebase_admin import credentials, exceptions, messaging
from google.auth.credentials import AnonymousCredentials
from urllib3.util.retry import Retry

from app.notifications.models import AttemptOutcome
from app.notifications.providers import PushMessage, PushResult

logger = logging.getLogger(__name__)

FCM_BATCH_LIMIT = 500  # send_each refuses more
PRODUCTION_FCM_URL = "https://fcm.googleapis.com/v1/projects/{0}/messages:send"

_RETRYABLE_CODES = {
    "QUOTA_EXCEEDED",
    "RESOURCE_EXHAUSTED",
    "UNAVAILABLE",
    "INTERNAL",
    "UNKNOWN",
    "DEADLINE_EXCEEDED",
}


class _NoCredentials(AnonymousCredentials):
    # google-auth refreshes credentials once when a request gets 401; there is nothing to
    # refresh, and the 401 (e.g. an APNs auth error) must reach the classification below.
    def refresh(self, request: Any) -> None:
        return None


class AnonymousCredential(credentials.Base):  # type: ignore[misc]
    """No credentials: only for a fake FCM server on loopback (tests and benchmarks)."""

    def get_credential(self) -> AnonymousCredentials:
        return _NoCredentials()  # type: ignore[no-untyped-call]


@dataclass(frozen=True)
class FcmConfig:
    credentials_file: str | None = None
    credentials_json: dict[str, Any] | None = None
    project_id: str | None = None
    # Tests and benchmarks only: a fake FCM server, e.g. http://127.0.0.1:8999
    endpoint: str | None = None
    timeout_seconds: float = 30.0


def fcm_url(endpoint: str) -> str:
    return endpoint.rstrip("/") + "/v1/projects/{0}/messages:send"


class FcmProvider:
    name = "fcm"
    max_batch = FCM_BATCH_LIMIT

    def __init__(self, config: FcmConfig) -> None:
        credential: credentials.Base
        if config.credentials_file:
            credential = credentials.Certificate(config.credentials_file)
        elif config.credentials_json:
            credential = credentials.Certificate(config.credentials_json)
        elif config.endpoint:
            credential = AnonymousCredential()
        else:
            raise ValueError("FCM needs service-account credentials (a file path or JSON)")
        options: dict[str, Any] = {"httpTimeout": config.timeout_seconds}
        if config.project_id:
            options["projectId"] = config.project_id
        elif config.endpoint:
            options["projectId"] = "kairos-local"
        # A named app per provider: several providers (tests) never share state.
        self.app = firebase_admin.initialize_app(
            credential, options, name=f"kairos-{uuid.uuid4().hex[:12]}"
        )
        url = PRODUCTION_FCM_URL
        if config.endpoint:
            url = fcm_url(config.endpoint)
            # Read once, when the app's messaging service is created (below).
            messaging._MessagingService.FCM_URL = url
        service = messaging._get_messaging_service(self.app)
        # requests reads proxy settings from the environment on every request (a sixth of
        # the client's CPU per push); the worker's proxy, if any, is fixed at start.
        service._client.session.trust_env = False
        service._client.session.proxies.update(requests.utils.get_environ_proxies(url))
        parts = urlsplit(url)
        service._client.session.mount(
            f"{parts.scheme}://{parts.netloc}",
            requests.adapters.HTTPAdapter(
                pool_connections=100,
                pool_maxsize=FCM_BATCH_LIMIT,
                max_retries=Retry(
                    connect=1,
                    read=0,
                    status=0,
                    allowed_methods=None,
                    # Hand 429/503 with Retry-After to the outbox instead of sleeping here.
                    respect_retry_after_header=False,
                    raise_on_status=False,
                ),
            ),
        )
        if config.endpoint:
            messaging._MessagingService.FCM_URL = PRODUCTION_FCM_URL

    def close(self) -> None:
        firebase_admin.delete_app(self.app)

    def send(self, messages: Sequence[PushMessage]) -> list[PushResult]:
        results: list[PushResult] = []
        for start in range(0, len(messages), FCM_BATCH_LIMIT):
            chunk = list(messages[start : start + FCM_BATCH_LIMIT])
            try:
                batch = messaging.send_each([build_message(m) for m in chunk], app=self.app)
            except (exceptions.FirebaseError, ValueError) as exc:
                results += [classify(exc) for _ in chunk]
                continue
            for response in batch.responses:
                if response.success:
                    results.append(
                        PushResult(AttemptOutcome.accepted, response=response.message_id)
                    )
                else:
                    results.append(classify(response.exception))
        return results


def build_message(m: PushMessage) -> messaging.Message:
    ttl_seconds = max(0, int(m.ttl.total_seconds()))
    apns_headers = {
        "apns-priority": "10" if m.high_priority else "5",
        "apns-push-type": "alert",
    }
    if m.expires_at is not None:
        apns_headers["apns-expiration"] = str(int(m.expires_at.timestamp()))
    if m.collapse_key:
        apns_headers["apns-collapse-id"] = m.collapse_key[:64]
    with warnings.catch_warnings():
        # firebase-admin 7.7 deprecates `token` in favour of installation ids (`fid`); the
        # apps register FCM registration tokens, which the HTTP v1 API still takes as `token`.
        warnings.simplefilter("ignore", DeprecationWarning)
        return _message(m, ttl_seconds, apns_headers)


def _message(m: PushMessage, ttl_seconds: int, apns_headers: dict[str, str]) -> messaging.Message:
    return messaging.Message(
        token=m.token,
        notification=messaging.Notification(title=m.title, body=m.body),
        data=m.data,
        android=messaging.AndroidConfig(
            priority="high" if m.high_priority else "normal",
            ttl=ttl_seconds,
            collapse_key=m.collapse_key,
        ),
        apns=messaging.APNSConfig(
            headers=apns_headers,
            payload=messaging.APNSPayload(aps=messaging.Aps(sound="default")),
        ),
    )


def _retry_after(exc: Exception) -> float | None:
    response = getattr(exc, "http_response", None)
    if response is None:
        return None
    value = response.headers.get("Retry-After")
    return None if value is None else retry_after_seconds(value, response.headers.get("Date"))


def retry_after_seconds(value: str, date: str | None) -> float | None:
    """Retry-After as seconds: either a number of seconds or an HTTP date, which is counted
    from the response's own Date header (so that our clock's skew does not matter; without
    a Date header there is nothing to count from, and the backoff applies)."""
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    if date is None:
        return None
    try:
        retry_at = email.utils.parsedate_to_datetime(value)
        sent_at = email.utils.parsedate_to_datetime(date)
    except (TypeError, ValueError):
        return None
    if retry_at.tzinfo is None or sent_at.tzinfo is None:
        return None  # HTTP dates are GMT; anything else is not one
    return max(0.0, (retry_at - sent_at).total_seconds())


def _fcm_code(exc: Exception) -> str:
    if isinstance(exc, messaging.UnregisteredError):
        return "UNREGISTERED"
    if isinstance(exc, messaging.SenderIdMismatchError):
        return "SENDER_ID_MISMATCH"
    if isinstance(exc, messaging.QuotaExceededError):
        return "QUOTA_EXCEEDED"
    if isinstance(exc, messaging.ThirdPartyAuthError):
        return "THIRD_PARTY_AUTH_ERROR"
    code = getattr(exc, "code", None)
    return str(code) if code else type(exc).__name__


def classify(exc: Exception | None) -> PushResult:
    """An FCM error as an attempt outcome (see the module docstring)."""
    if exc is None:
        return PushResult(AttemptOutcome.retry, "UNKNOWN", response="no response")
    code = _fcm_code(exc)
    text = str(exc)[:500]
    if code in ("UNREGISTERED", "SENDER_ID_MISMATCH"):
        return PushResult(AttemptOutcome.invalid_token, code, response=text)
    if code == "INVALID_ARGUMENT" and "registration token" in text.lower():
        return PushResult(AttemptOutcome.invalid_token, code, response=text)
    if code in _RETRYABLE_CODES:
        return PushResult(AttemptOutcome.retry, code, _retry_after(exc), response=text)
    return PushResult(AttemptOutcome.rejected, code, response=text, alert=True)
