"""State that lives in the database, read at scrape time (so it is right with any number of
worker processes): due work, the outbox, webhook deliveries, export jobs, open care-team
flags and escalation alerts, worker heartbeats.

Every query is an indexed range or a count over a small table (alerts, flags, export jobs
and worker heartbeats hold a few rows per participant at most), all in one read-only
transaction. On PostgreSQL the transaction carries a statement timeout
(KAIROS_METRICS_QUERY_TIMEOUT_SECONDS), so a slow or locked database costs each query that
long at most, and the first query that times out ends the reading; then the scrape still
answers, with ``kairos_database_up 0`` and the process metrics, but without the database
figures. A database that refuses connections fails the reading at once. The statement
timeout does not bound getting a connection: a server that accepts no packets holds the
scrape for as long as the engine waits to connect, which the session factory's engine
decides (the metrics port's engine is built like the API's, from the same settings).
"""

import logging
import time
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy.orm import Session, sessionmaker

from app.alerts.models import Alert, WebhookStatus
from app.core.clock import Clock
from app.export.models import ExportJob, ExportStatus
from app.monitoring.models import CareFlag, FlagKind
from app.notifications.models import Notification, NotificationStatus
from app.protocols.questionnaires import Severity
from app.scheduling.models import ItemKind, ItemStatus, ScheduledItem
from app.worker.models import ACTIVE_WORKER_WINDOW, WorkerHeartbeat

logger = logging.getLogger(__name__)

EXPORT_JOB_STATES = tuple(status.value for status in ExportStatus)


def _age(now: datetime, oldest: datetime | None) -> float:
    return max((now - oldest).total_seconds(), 0.0) if oldest is not None else 0.0


def _by_label(rows: Iterable[Sequence[Any]], known: Iterable[str]) -> dict[str, int]:
    counts = dict.fromkeys(known, 0)
    for label, count in rows:
        counts[str(label)] = int(count)
    return counts


class DatabaseState(Collector):
    def __init__(
        self, session_factory: sessionmaker[Session], clock: Clock, timeout_seconds: float
    ) -> None:
        self.session_factory = session_factory
        self.clock = clock
        self.timeout_ms = max(int(timeout_seconds * 1000), 1)

    def describe(self) -> Iterable[Metric]:
        return []  # registering must not query the database

    def collect(self) -> Iterator[Metric]:
        started = time.perf_counter()
        families: list[Metric] = []
        up = 1.0
        try:
            with self.session_factory() as session:
                if session.get_bind().dialect.name == "postgresql":
                    session.execute(
                        sa.select(
                            sa.func.set_config("statement_timeout", str(self.timeout_ms), sa.true())
                        )
                    )
                families = self._read(session, self.clock.now())
                session.rollback()
        except sa.exc.SQLAlchemyError as exc:
            up = 0.0
            logger.warning("metrics: reading state from the database failed: %s", exc)
        yield from families
        yield GaugeMetricFamily(
            "kairos_database_up",
            "1 when the last scrape read the state below from the database, else 0.",
            value=up,
        )
        yield GaugeMetricFamily(
            "kairos_database_state_scrape_seconds",
            "How long this scrape spent reading state from the database.",
            value=time.perf_counter() - started,
        )

    def _read(self, session: Session, now: datetime) -> list[Metric]:
        return [
            *self._due_work(session, now),
            *self._outbox(session, now),
            *self._alerts(session, now),
            self._export_jobs(session),
            self._care_flags(session),
            *self._workers(session, now),
        ]

    def _due_work(self, session: Session, now: datetime) -> list[Metric]:
        rows = session.execute(
            sa.select(
                ScheduledItem.kind, sa.func.count(), sa.func.min(ScheduledItem.due_at)
            )  # ix_scheduled_items_due (status, due_at)
            .where(
                ScheduledItem.status.in_([ItemStatus.planned, ItemStatus.claimed]),
                ScheduledItem.due_at <= now,
            )
            .group_by(ScheduledItem.kind)
        ).all()
        found = {str(kind): (count, oldest) for kind, count, oldest in rows}
        depth = GaugeMetricFamily(
            "kairos_due_work_items",
            "Schedule rows (EMA prompts, decision points) that are due and not yet settled.",
            labels=["kind"],
        )
        age = GaugeMetricFamily(
            "kairos_due_work_oldest_age_seconds",
            "How long the oldest due, unsettled schedule row has been due (0: none). Grows "
            "when no worker fires due work.",
            labels=["kind"],
        )
        for kind in (*ItemKind, *(k for k in found if k not in set(ItemKind))):
            count, oldest = found.get(str(kind), (0, None))
            depth.add_metric([str(kind)], count)
            age.add_metric([str(kind)], _age(now, oldest))
        return [depth, age]

    def _outbox(self, session: Session, now: datetime) -> list[Metric]:
        count, oldest = session.execute(
            sa.select(sa.func.count(), sa.func.min(Notification.send_at)).where(
                # ix_notifications_sendable (status, send_at)
                Notification.status.in_([NotificationStatus.pending, NotificationStatus.sending]),
                Notification.send_at <= now,
            )
        ).one()
        return [
            GaugeMetricFamily(
                "kairos_outbox_due_notifications",
                "Notifications due to be sent and not sent yet (pending, waiting for a retry, "
                "or being sent).",
                value=count,
            ),
            GaugeMetricFamily(
                "kairos_outbox_oldest_due_age_seconds",
                "How long the oldest unsent due notification has been due (0: none).",
                value=_age(now, oldest),
            ),
        ]

    def _alerts(self, session: Session, now: datetime) -> list[Metric]:
        webhooks = GaugeMetricFamily(
            "kairos_alert_webhooks",
            "Escalation alerts by webhook delivery state: pending (retrying), sending, "
            "delivered, failed (gave up), not_configured.",
            labels=["state"],
        )
        states = _by_label(
            session.execute(
                sa.select(Alert.webhook_status, sa.func.count()).group_by(Alert.webhook_status)
            ).all(),
            WebhookStatus,
        )
        for state, count in states.items():
            webhooks.add_metric([state], count)
        oldest = session.scalar(
            sa.select(sa.func.min(Alert.created_at)).where(
                Alert.webhook_status.in_([WebhookStatus.pending, WebhookStatus.sending])
            )
        )
        open_alerts = GaugeMetricFamily(
            "kairos_alerts_open",
            "Escalation alerts not acknowledged by the care team, by severity.",
            labels=["severity"],
        )
        severities = _by_label(
            session.execute(
                sa.select(Alert.severity, sa.func.count())
                .where(Alert.acknowledged_at.is_(None))
                .group_by(Alert.severity)
            ).all(),
            Severity,
        )
        for severity, count in severities.items():
            open_alerts.add_metric([severity], count)
        return [
            webhooks,
            GaugeMetricFamily(
                "kairos_alert_webhook_oldest_pending_age_seconds",
                "How long the oldest alert still waiting for webhook delivery has existed "
                "(0: none).",
                value=_age(now, oldest),
            ),
            open_alerts,
        ]

    def _export_jobs(self, session: Session) -> Metric:
        family = GaugeMetricFamily(
            "kairos_export_jobs", "Background export jobs by state.", labels=["state"]
        )
        states = _by_label(
            session.execute(
                # ix_export_jobs_status_created
                sa.select(ExportJob.status, sa.func.count()).group_by(ExportJob.status)
            ).all(),
            EXPORT_JOB_STATES,
        )
        for state, count in states.items():
            family.add_metric([state], count)
        return family

    def _care_flags(self, session: Session) -> Metric:
        family = GaugeMetricFamily(
            "kairos_care_flags_open",
            "Care-team flags not resolved yet (acknowledged or not), by kind.",
            labels=["kind"],
        )
        kinds = _by_label(
            session.execute(
                sa.select(CareFlag.kind, sa.func.count())
                .where(CareFlag.resolved_at.is_(None))
                .group_by(CareFlag.kind)
            ).all(),
            FlagKind,
        )
        for kind, count in kinds.items():
            family.add_metric([kind], count)
        return family

    def _workers(self, session: Session, now: datetime) -> list[Metric]:
        last, active = session.execute(
            sa.select(
                sa.func.max(WorkerHeartbeat.last_tick_at),
                sa.func.count().filter(WorkerHeartbeat.last_tick_at >= now - ACTIVE_WORKER_WINDOW),
            )
        ).one()
        minutes = int(ACTIVE_WORKER_WINDOW.total_seconds() // 60)
        return [
            GaugeMetricFamily(
                "kairos_worker_last_tick_age_seconds",
                "Time since the most recent tick of any worker (NaN: no worker has ever "
                "ticked; alert on kairos_workers_active for that).",
                value=_age(now, last) if last is not None else float("nan"),
            ),
            GaugeMetricFamily(
                "kairos_workers_active",
                f"Worker processes that ticked in the last {minutes} minutes (0: none, also "
                "when no worker has ever run).",
                value=active,
            ),
        ]
