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
from app.export.jobs import run_next_job
from app.monitoring.flags import evaluate_all
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
        export_dir: str | None = None,
        alert_webhook: WebhookConfig | None = None,
    ) -> None:
        self.session_factory = session_factory
        self.clock = clock
        self.tick_seconds = tick_seconds
        self.export_dir = export_dir
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

    def run_exports(self) -> None:
        """Background exports, one after another, apart from the tick: an export of a large
        study takes minutes and must not hold up prompts and decisions."""
        if self.export_dir is None:
            return
        try:
            while run_next_job(self.session_factory, self.clock, self.export_dir, self.worker_id):
                pass
        except Exception:
            logger.exception("export run failed")

    def evaluate_flags(self) -> None:
        """Care-team flags; idempotent, so running it hourly raises each flag once."""
        try:
            with session_scope(self.session_factory) as session:
                raised = evaluate_all(session, self.clock)
            if raised:
                logger.info("raised %d care-team flags", raised)
        except Exception:
            logger.exception("flag evaluation failed")

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
        scheduler.add_job(
            self.evaluate_flags, "interval", hours=1, id="flags", max_instances=1, coalesce=True
        )
        if self.export_dir is not None:
            scheduler.add_job(
                self.run_exports,
                "interval",
                seconds=self.tick_seconds,
                id="exports",
                max_instances=1,
                coalesce=True,
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
