"""Kairos assembled in one place: what listens to participant events, which decider decides
at decision points, and through which channels pushes and alerts leave.

The API app, the worker, the CLI and any other entry point (a simulator, an import script)
start from here, so none of them is a different Kairos for having missed a step: ingestion
outside the API app reaches scheduling's triggers once ``connect_listeners()`` has run.
"""

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.orm import Session, sessionmaker

from app.alerts.sends import CareSendConfig
from app.alerts.webhook import WebhookConfig
from app.core.clock import Clock
from app.core.config import Settings
from app.decision_rules.engine import decide_batch
from app.listeners import connect_listeners
from app.notifications.provider_setup import provider_from_settings
from app.notifications.providers import PushProvider
from app.notifications.sender import SendPolicy
from app.scheduling.decision_hook import DecideBatch
from app.simulation.jobs import run_next_simulation
from app.worker.runner import BackgroundJob, Worker


@dataclass(frozen=True)
class Wiring:
    """What the worker runs with."""

    decider: DecideBatch
    provider: PushProvider
    # None when no care-team webhook is configured (alerts are then only stored).
    alert_webhook: WebhookConfig | None
    # The channels care routes are sent through (e-mail, the signed webhook).
    care_sends: CareSendConfig | None = None
    # Long jobs the worker runs beside exports (protocol simulations).
    background_jobs: tuple[BackgroundJob, ...] = ()


def wire(settings: Settings) -> Wiring:
    """The listeners connected, and the decider and channels the settings ask for."""
    connect_listeners()
    return Wiring(
        decider=decide_batch,
        provider=provider_from_settings(settings),
        alert_webhook=WebhookConfig.from_settings(settings),
        care_sends=CareSendConfig.from_settings(settings),
        background_jobs=(run_next_simulation,),
    )


def worker_from_settings(
    session_factory: sessionmaker[Session],
    clock: Clock,
    settings: Settings,
    *,
    wiring: Wiring | None = None,
    worker_id: str | None = None,
) -> Worker:
    """The worker the settings describe, with ``wire(settings)`` unless given a wiring."""
    wiring = wiring or wire(settings)
    lease = timedelta(seconds=settings.lease_seconds)
    return Worker(
        session_factory,
        clock,
        tick_seconds=settings.worker_tick_seconds,
        worker_id=worker_id,
        decider=wiring.decider,
        provider=wiring.provider,
        send_policy=SendPolicy(
            max_attempts=settings.push_max_attempts,
            lease=lease,
            batch_size=settings.push_batch_size,
        ),
        schedule_batch_size=settings.schedule_batch_size,
        lease=lease,
        export_dir=settings.export_dir,
        alert_webhook=wiring.alert_webhook,
        care_sends=wiring.care_sends,
        background_jobs=wiring.background_jobs,
    )


__all__ = ["Wiring", "connect_listeners", "wire", "worker_from_settings"]
