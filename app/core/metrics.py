"""Prometheus metrics observed in a process, and how a process exposes them.

Two kinds of figures, kept apart on purpose:

- **Events** a process sees (HTTP requests, due work settled by a worker, push attempts,
  webhook attempts) are counters and histograms defined here, in prometheus_client's
  default registry. With several Kairos processes in one PID namespace (``kairos serve
  --workers N``, or ``kairos worker`` beside the API) they need prometheus_client's
  multiprocess mode: every process writes its values to files in
  ``PROMETHEUS_MULTIPROC_DIR`` and whichever process is scraped sums them (``kairos serve
  --workers N`` creates that directory when it is unset). The files are named by process
  id, so separate containers (each Kairos a PID 1) must not share the directory; a worker
  there serves its own with ``--metrics-port``. Only counters and histograms are used, so
  no live-gauge bookkeeping is needed when a process exits.
- **State** that lives in the database (outbox depth and age, due work, open flags and
  alerts, webhook and export job states) is read at scrape time by
  ``app.observability.state``, so it is right however many workers run.
"""

import os
from collections.abc import Iterable, Mapping

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
)
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

# No *_created series: they double every counter's output and no alert uses them.
disable_created_metrics()  # type: ignore[no-untyped-call]

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
# The classic text format: every Prometheus version reads it.
CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4

HTTP_REQUESTS = Counter(
    "kairos_http_requests",
    "HTTP requests answered, by method, route template (unmatched: no route) and status "
    "class (2xx, 4xx, 5xx ...).",
    ["method", "route", "status"],
)
HTTP_DURATION = Histogram(
    "kairos_http_request_duration_seconds",
    "Time from a request's arrival to the end of its response, by method and route template.",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
DUE_WORK_LAG = Histogram(
    "kairos_due_work_lag_seconds",
    "Due time to decision: how long after its due time a worker settled a schedule row, by "
    "kind (ema_prompt, decision_point) and outcome (fired, or missed: past its grace).",
    ["kind", "outcome"],
    buckets=(0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0),
)
PUSH_ATTEMPTS = Counter(
    "kairos_push_attempts",
    "Pushes handed to a provider (one per device), by provider and outcome class: accepted; "
    "invalid_token (unregistered or invalid: the device is disabled); retry (quota or "
    "server trouble); rejected (credentials or payload: not retried, alerted).",
    ["provider", "outcome"],
)
NOTIFICATIONS_SETTLED = Counter(
    "kairos_notifications_settled",
    "Outbox notifications settled by a sender, by the status they got: sent, retrying, "
    "failed, expired, cancelled.",
    ["status"],
)
WEBHOOK_ATTEMPTS = Counter(
    "kairos_alert_webhook_attempts",
    "Attempts to POST an escalation alert to the care team's webhook, by result "
    "(delivered, error).",
    ["result"],
)

ENROLLMENTS_THROTTLED = Counter(
    "kairos_enrollments_throttled",
    "Enrollment attempts refused with 429 because a failure budget was spent, by budget: "
    "address (one client address or IPv6 /64) or global (all addresses: nobody can enroll "
    "until the window ends).",
    ["budget"],
)


def multiprocess_dir() -> str | None:
    return os.environ.get(MULTIPROC_ENV) or None


class _Forward(Collector):
    """The process's own metrics (the default registry), inside another registry."""

    def collect(self) -> Iterable[Metric]:
        return REGISTRY.collect()


def exposition_registry(*extra: Collector) -> CollectorRegistry:
    """What one scrape reports: this host's process metrics (summed over every process
    writing to PROMETHEUS_MULTIPROC_DIR when it is set, else this process's) plus ``extra``
    collectors (the database state)."""
    registry = CollectorRegistry(auto_describe=False)
    directory = multiprocess_dir()
    if directory:
        MultiProcessCollector(registry, path=directory)  # type: ignore[no-untyped-call]
    else:
        registry.register(_Forward())
    for collector in extra:
        registry.register(collector)
    return registry


def exposition(registry: CollectorRegistry) -> bytes:
    return generate_latest(registry)


def observe_due_work(lags: Iterable[tuple[str, str, float]]) -> None:
    """Rows a worker settled (and committed): (kind, fired | missed, seconds late)."""
    for kind, outcome, seconds in lags:
        DUE_WORK_LAG.labels(kind, outcome).observe(seconds)


def observe_pushes(provider: str, outcomes: Mapping[str, int], statuses: Mapping[str, int]) -> None:
    """A sender's committed batch: attempts by outcome class, notifications by status."""
    for outcome, count in outcomes.items():
        if count:
            PUSH_ATTEMPTS.labels(provider, outcome).inc(count)
    for status, count in statuses.items():
        if count:
            NOTIFICATIONS_SETTLED.labels(status).inc(count)


def observe_throttled_enrollment(budget: str) -> None:
    """An enrollment attempt refused by the throttle (``address`` or ``global``)."""
    ENROLLMENTS_THROTTLED.labels(budget).inc()
