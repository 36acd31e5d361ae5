"""The worker: APScheduler only ticks; each tick does the durable, row-based work that is due.

Work that must happen (prompts, decision points, push sends, retries) lives in database
rows with a due time and is claimed by ticks, so any number of workers can run and a
restart loses nothing. A tick records the worker's heartbeat (which `/readyz` reports),
then alternates between firing due schedule rows and sending due outbox rows until neither
has work, then does the cheap housekeeping: extending schedule horizons that run short and
recording expired, unanswered prompts as missed.
"""

import logging
import os
import socket
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from sqlalchemy.orm import Session, sessionmaker

from app.alerts.sends import CareSendConfig, deliver_sends, escalate_due
from app.alerts.webhook import WebhookConfig, deliver_due
from app.care.reviews import plan_all, send_review_notices
from app.core.clock import Clock
from app.core.db import describe_database_error, is_database_unavailable, session_scope
from app.core.metrics import observe_due_work, observe_pushes
from app.decision_rules.posteriors import update_due_posteriors
from app.decision_rules.push_budget import pushes_over_budget
from app.export.jobs import run_next_job
from app.monitoring.flags import evaluate_all
from app.notifications.providers import PushProvider
from app.notifications.sender import SendPolicy, SendReport, send_batch
from app.scheduling.decision_hook import DecideBatch
from app.scheduling.dispatch import Settled, expire_unanswered, run_due_batch
from app.scheduling.fired_prompts import closed_prompts
from app.scheduling.planning import extend_horizon, participants_needing_plans
from app.worker.models import WorkerHeartbeat

logger = logging.getLogger(__name__)


class _LongTickFilter(logging.Filter):
    """A tick that runs past the next interval (a burst of due work) is expected: the skipped
    run is not worth a warning every interval."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "maximum number of running instances reached" not in record.getMessage()


logging.getLogger("apscheduler.scheduler").addFilter(_LongTickFilter())


def log_failure(what: str, exc: Exception) -> None:
    """A database outage is one warning line per run (the next run retries: the work is in
    rows, and leases expire); anything else is a bug, logged with its traceback."""
    if is_database_unavailable(exc):
        logger.warning(
            "%s: database unavailable (%s); retried on the next run",
            what,
            describe_database_error(exc),
        )
    else:
        logger.error("%s", what, exc_info=exc)


def default_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


# Participants whose horizons are extended per transaction.
PLAN_BATCH = 200

# Long work a worker runs apart from its tick, one item at a time, like exports: called
# with (session factory, clock, export directory, worker id); False when there was none.
BackgroundJob = Callable[[sessionmaker[Session], Clock, str, str], bool]

# How long the sender waits for the first decisions of a tick to commit.
SENDER_POLL_SECONDS = 0.02


@dataclass
class TickReport:
    settled: Settled = field(default_factory=Settled)
    sent: SendReport = field(default_factory=SendReport)
    planned_participants: int = 0
    expired_prompts: int = 0
    posterior_updates: int = 0


class Worker:
    def __init__(
        self,
        session_factory: sessionmaker[Session],
        clock: Clock,
        *,
        tick_seconds: float,
        worker_id: str | None = None,
        export_dir: str | None = None,
        decider: DecideBatch,
        provider: PushProvider,
        alert_webhook: WebhookConfig | None = None,
        care_sends: CareSendConfig | None = None,
        send_policy: SendPolicy | None = None,
        schedule_batch_size: int = 500,
        lease: timedelta = timedelta(seconds=120),
        background_jobs: Sequence[BackgroundJob] = (),
    ) -> None:
        self.session_factory = session_factory
        self.clock = clock
        self.tick_seconds = tick_seconds
        self.export_dir = export_dir
        self.worker_id = worker_id or default_worker_id()
        self.started_at = clock.now()
        self.alert_webhook = alert_webhook
        self.care_sends = care_sends
        self.decider = decider
        self.provider = provider
        self.send_policy = send_policy or SendPolicy(lease=lease)
        self.schedule_batch_size = schedule_batch_size
        self.lease = lease
        self.background_jobs = tuple(background_jobs)
        self._scheduler: BackgroundScheduler | BlockingScheduler | None = None

    def tick(self) -> None:
        """One pass over due work. Errors are logged, never allowed to stop the clock."""
        try:
            with session_scope(self.session_factory) as session:
                self._heartbeat(session)
            self.run_pending()
        except Exception as exc:
            log_failure("worker tick failed", exc)
        self._retry_alert_webhooks()
        self.run_care_sends()

    def run_care_sends(self) -> int:
        """Escalate unacknowledged alerts that are due, add the sends of due and overdue
        reviews, then send (and retry) every due send to the care routes; how many arrived."""
        try:
            send_review_notices(self.session_factory, self.clock)
        except Exception as exc:
            log_failure("review notices failed", exc)
        if self.care_sends is None:
            return 0
        try:
            escalate_due(self.session_factory, self.clock)
            return deliver_sends(self.session_factory, self.clock, self.care_sends)
        except Exception as exc:
            log_failure("care-team sends failed", exc)
            return 0

    def _retry_alert_webhooks(self) -> None:
        if self.alert_webhook is None:
            return
        try:
            deliver_due(self.session_factory, self.clock, self.alert_webhook)
        except Exception as exc:
            log_failure("alert webhook retries failed", exc)

    def run_exports(self) -> None:
        """Background exports, one after another, apart from the tick: an export of a large
        study takes minutes and must not hold up prompts and decisions."""
        if self.export_dir is None:
            return
        try:
            jobs = (run_next_job, *self.background_jobs)
            args = (self.session_factory, self.clock, self.export_dir, self.worker_id)
            while any(job(*args) for job in jobs):
                pass
        except Exception as exc:
            log_failure("export run failed", exc)

    def evaluate_flags(self) -> None:
        """Care-team flags, then the reviews they and the cadence make due; idempotent, so
        running it hourly raises each flag (and adds each review) once."""
        try:
            with session_scope(self.session_factory) as session:
                raised = evaluate_all(session, self.clock)
            if raised:
                logger.info("raised %d care-team flags", raised)
        except Exception as exc:
            log_failure("flag evaluation failed", exc)
        try:
            with session_scope(self.session_factory) as session:
                planned = plan_all(session, self.clock)
            if planned:
                logger.info("%d care-team reviews fell due", planned)
        except Exception as exc:
            log_failure("review planning failed", exc)

    def run_pending(self) -> TickReport:
        """Fire due rows and send due pushes until none are left, then housekeeping."""
        report = TickReport()
        if self._sends_concurrently():
            self._fire_and_send_concurrently(report)
        else:
            self._fire_and_send_in_turn(report)
        report.planned_participants = self.plan_horizons()
        with session_scope(self.session_factory) as session:
            report.expired_prompts = expire_unanswered(session, self.clock.now())
        report.posterior_updates = self.update_posteriors()
        return report

    def update_posteriors(self) -> int:
        """Learning policies' posterior updates that are due (most ticks: none)."""
        try:
            return update_due_posteriors(self.session_factory, self.clock)
        except Exception as exc:
            log_failure("posterior updates failed", exc)
            return 0

    def _sends_concurrently(self) -> bool:
        # SQLite has one writer at a time: a second thread would only wait for the lock.
        bind = self.session_factory.kw.get("bind")
        return bind is not None and bind.dialect.name == "postgresql"

    def _fire_batch(self) -> Settled:
        settled = run_due_batch(
            self.session_factory,
            self.clock,
            self.worker_id,
            self.decider,
            lease=self.lease,
            batch_size=self.schedule_batch_size,
        )
        observe_due_work(settled.lags)  # committed: due time to decision, per row
        return settled

    def _send_batch(self) -> SendReport:
        sent = send_batch(
            self.session_factory,
            self.clock,
            self.worker_id,
            self.provider,
            self.send_policy,
            closed_prompts=closed_prompts,
            over_budget=pushes_over_budget,
        )
        observe_pushes(
            self.provider.name,
            sent.outcomes,
            {
                "sent": sent.sent,
                "retrying": sent.retrying,
                "failed": sent.failed,
                "expired": sent.expired,
                "cancelled": sent.cancelled,
            },
        )
        return sent

    def _fire_and_send_in_turn(self, report: TickReport) -> None:
        while True:
            settled = self._fire_batch()
            report.settled.add(settled)
            sent = self._send_batch()
            report.sent.add(sent)
            if not (settled.touched or sent.claimed):
                return

    def _fire_and_send_concurrently(self, report: TickReport) -> None:
        """Pushes go out while later decision points are still being decided: when many are
        due at once, the first pushes do not wait for the last decision."""
        firing_done = threading.Event()
        failure: list[BaseException] = []

        def send_until_idle() -> None:
            try:
                while True:
                    # Read before the batch: an empty batch after firing ended means that
                    # everything fired has been claimed.
                    done = firing_done.is_set()
                    sent = self._send_batch()
                    report.sent.add(sent)
                    if not sent.claimed:
                        if done:
                            return
                        firing_done.wait(SENDER_POLL_SECONDS)
            except BaseException as exc:
                failure.append(exc)

        sender = threading.Thread(target=send_until_idle, name=f"{self.worker_id}-sender")
        sender.start()
        try:
            while (settled := self._fire_batch()).touched:
                report.settled.add(settled)
        finally:
            firing_done.set()
            sender.join()
        if failure:
            raise failure[0]

    def plan_horizons(self, max_batches: int = 1) -> int:
        """Extend the schedules of participants whose horizon runs short (most ticks: none).

        At most ``max_batches`` batches per tick, so a burst (a large cohort enrolled at once)
        never holds back due prompts and pushes: the next tick goes on with it.
        """
        total = 0
        for _ in range(max_batches):
            with session_scope(self.session_factory) as session:
                now = self.clock.now()
                participants = participants_needing_plans(session, now, PLAN_BATCH)
                for participant in participants:
                    extend_horizon(session, now, participant)
            total += len(participants)
            if len(participants) < PLAN_BATCH:
                break
        return total

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
