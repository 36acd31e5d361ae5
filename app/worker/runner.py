"""The worker: APScheduler only ticks; each tick does the durable, row-based work that is due.

Work that must happen (prompts, decision points, push sends) lives in database rows with a
due time and is claimed by ticks, so any number of workers can run and a restart loses
nothing. Until the scheduling and delivery packages add their claims, a tick records the
worker's heartbeat, which `/readyz` reports.
"""

import logging
import os
import socket
from datetime import UTC, datetime

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from sqlalchemy.orm import Session, sessionmaker

from app.alerts.webhook import WebhookConfig, deliver_due
from app.core.clock import Clock
from app.core.db import session_scope
from app.worker.models import WorkerHeartbeat

logger = logging.getLogger(__name__)


def default_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class Worker:
    def __init__(
        self,
        session_factory: sessionmaker[Session],
        clock: Clock,
        *,
        tick_seconds: float,
        worker_id: str | None = None,
        alert_webhook: WebhookConfig | None = None,
    ) -> None:
        self.session_factory = session_factory
        self.clock = clock
        self.tick_seconds = tick_seconds
        self.worker_id = worker_id or default_worker_id()
        self.started_at = clock.now()
        self.alert_webhook = alert_webhook
        self._scheduler: BackgroundScheduler | BlockingScheduler | None = None

    def tick(self) -> None:
        """One pass over due work. Errors are logged, never allowed to stop the clock."""
        try:
            with session_scope(self.session_factory) as session:
                self._heartbeat(session)
        except Exception:
            logger.exception("worker tick failed")
        self._retry_alert_webhooks()

    def _retry_alert_webhooks(self) -> None:
        if self.alert_webhook is None:
            return
        try:
            deliver_due(self.session_factory, self.clock, self.alert_webhook)
        except Exception:
            logger.exception("alert webhook retries failed")

    def _heartbeat(self, session: Session) -> None:
        row = session.get(WorkerHeartbeat, self.worker_id)
        now = self.clock.now()
        if row is None:
            session.add(
                WorkerHeartbeat(
                    worker_id=self.worker_id, started_at=self.started_at, last_tick_at=now
                )
            )
        else:
            row.last_tick_at = now

    def _add_tick_job(self, scheduler: BackgroundScheduler | BlockingScheduler) -> None:
        # One tick at a time per process; a slow tick is not stacked up behind itself.
        scheduler.add_job(
            self.tick,
            "interval",
            seconds=self.tick_seconds,
            id="tick",
            max_instances=1,
            coalesce=True,
            next_run_time=datetime.now(UTC),
        )

    def start_in_background(self) -> None:
        scheduler = BackgroundScheduler(timezone=UTC)
        self._add_tick_job(scheduler)
        scheduler.start()
        self._scheduler = scheduler
        logger.info(
            "worker %s ticking every %ss in the background", self.worker_id, self.tick_seconds
        )

    def run_forever(self) -> None:
        scheduler = BlockingScheduler(timezone=UTC)
        self._add_tick_job(scheduler)
        self._scheduler = scheduler
        logger.info("worker %s ticking every %ss", self.worker_id, self.tick_seconds)
        scheduler.start()

    def shutdown(self) -> None:
        if self._scheduler is not None and self._scheduler.running:
            self._scheduler.shutdown(wait=True)
        self._scheduler = None
