"""Kairos assembled in one place: what listens to participant events, which decider decides
at decision points, and through which channels pushes and alerts leave.

The API app, the worker, the CLI and any other entry point (a simulator, an import script)
start from here, so none of them is a different Kairos for having missed a step: ingestion
outside the API app reaches scheduling's triggers once ``connect_listeners()`` has run.
"""

from dataclasses import dataclass

from app.alerts.webhook import WebhookConfig
from app.core.config import Settings
from app.decision_rules.engine import decide_batch
from app.notifications.provider_setup import provider_from_settings
from app.notifications.providers import PushProvider
from app.scheduling.decision_hook import DecideBatch
from app.scheduling.triggers import subscribe_all


@dataclass(frozen=True)
class Wiring:
    """What the worker runs with."""

    decider: DecideBatch
    provider: PushProvider
    # None when no care-team webhook is configured (alerts are then only stored).
    alert_webhook: WebhookConfig | None


def connect_listeners() -> None:
    """Participant events (EMA answers, completed exercises …) reach scheduling's triggers.
    Idempotent: connecting twice does not make a listener fire twice."""
    subscribe_all()


def wire(settings: Settings) -> Wiring:
    """The listeners connected, and the decider and channels the settings ask for."""
    connect_listeners()
    return Wiring(
        decider=decide_batch,
        provider=provider_from_settings(settings),
        alert_webhook=WebhookConfig.from_settings(settings),
    )
