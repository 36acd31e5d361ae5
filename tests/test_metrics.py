"""Prometheus metrics (GET /metrics), through the real app and the real worker.

Process metrics are process-wide counters, so each test compares two scrapes (before and
after what it does) rather than absolute values. Database state is read at scrape time.
"""

import math
import os
import re
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
import yaml
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr

from app.alerts.models import Alert, WebhookStatus
from app.alerts.webhook import WebhookConfig, deliver_due
from app.api.main import create_app
from app.cli import _serve_metrics
from app.core.clock import SimulatedClock
from app.core.config import Settings
from app.core.db import create_db_engine, make_session_factory
from app.core.metrics import MULTIPROC_ENV, exposition, exposition_registry
from app.monitoring.models import CareFlag
from app.notifications.fcm import FcmProvider
from app.observability.state import DatabaseState
from app.staff.models import Role
from app.worker.runner import Worker
from tests.conftest import World, bearer, is_postgres_run
from tests.support import fake_fcm
from tests.support.exports import export_job
from tests.support.push import person_with_devices
from tests.support.scheduling import RecordingDecider, decide_nothing

DUE = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)  # the 09:00 Berlin decision point
METRICS_TOKEN = "metrics-token-for-prometheus-0123456789"

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    """Every sample of an exposition, by (name, labels); the parser refuses a bad one."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def scrape(client: TestClient, headers: dict[str, str]) -> Samples:
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return parse(response.text)


@pytest.fixture
def token_client(
    engine: sa.Engine, settings: Settings, clock: SimulatedClock
) -> Iterator[TestClient]:
    app = create_app(settings.model_copy(update={"metrics_token": SecretStr(METRICS_TOKEN)}), clock)
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


def test_requests_are_counted_by_route_template_and_status_class(world: World) -> None:
    admin = world.staff(Role.admin)
    before = scrape(world.client, admin)
    study = world.study()
    assert world.client.get(f"/v1/studies/{study['id']}", headers=admin).status_code == 200
    missing = uuid.uuid4()
    assert world.client.get(f"/v1/studies/{missing}", headers=admin).status_code == 404
    assert world.client.get(f"/no/such/{missing}").status_code == 404
    after = scrape(world.client, admin)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    one = {"method": "GET", "route": "/v1/studies/{study_id}"}
    assert delta("kairos_http_requests_total", **one, status="2xx") == 1
    assert delta("kairos_http_requests_total", **one, status="4xx") == 1
    assert (
        delta("kairos_http_requests_total", method="POST", route="/v1/studies", status="2xx") == 1
    )
    assert delta("kairos_http_requests_total", method="GET", route="unmatched", status="4xx") == 1
    assert delta("kairos_http_request_duration_seconds_count", **one) == 2
    assert delta("kairos_http_request_duration_seconds_bucket", **one, le="+Inf") == 2
    assert delta("kairos_http_request_duration_seconds_sum", **one) > 0
    # No ids in labels: a label per study or participant would grow without bound.
    labels = {v for _, pairs in after for _, v in pairs}
    assert not any(study["id"] in v or str(missing) in v for v in labels)


def test_the_docs_pages_and_the_openapi_document_are_counted_under_their_paths(
    world: World,
) -> None:
    admin = world.staff(Role.admin)
    before = scrape(world.client, admin)
    for method, path in (
        ("GET", "/openapi.json"),
        ("GET", "/docs"),
        ("HEAD", "/docs"),
        ("GET", "/redoc"),
        ("POST", "/redoc"),  # 405: the route matched, the method did not
    ):
        assert world.client.request(method, path).status_code < 500
    after = scrape(world.client, admin)

    def delta(method: str, route: str, status: str) -> float:
        labels = {"method": method, "route": route, "status": status}
        return value(after, "kairos_http_requests_total", **labels) - value(
            before, "kairos_http_requests_total", **labels
        )

    assert delta("GET", "/openapi.json", "2xx") == 1
    assert delta("GET", "/docs", "2xx") == 1
    assert delta("HEAD", "/docs", "2xx") == 1
    assert delta("GET", "/redoc", "2xx") == 1
    assert delta("POST", "/redoc", "4xx") == 1
    for method in ("GET", "HEAD", "POST"):
        for status in ("2xx", "4xx"):
            assert delta(method, "unmatched", status) == 0, (method, status)
    duration = {"method": "GET", "route": "/openapi.json"}
    assert (
        value(after, "kairos_http_request_duration_seconds_count", **duration)
        - value(before, "kairos_http_request_duration_seconds_count", **duration)
        == 1
    )


def test_unexpected_errors_and_too_large_bodies_are_counted(
    world: World, settings: Settings, clock: SimulatedClock
) -> None:
    app = create_app(settings.model_copy(update={"max_request_bytes": 1024}), clock)

    def broken() -> None:
        raise RuntimeError("boom")

    app.add_api_route("/test/broken", broken, methods=["GET"])
    admin = world.staff(Role.admin)
    before = scrape(world.client, admin)
    with TestClient(app, raise_server_exceptions=False) as client:
        assert client.get("/test/broken").status_code == 500
        too_large = client.post("/v1/enroll", content=b"x" * 2048)
        assert too_large.status_code == 413
    after = scrape(world.client, admin)
    broken_ = {"method": "GET", "route": "/test/broken"}
    assert (
        value(after, "kairos_http_requests_total", **broken_, status="5xx")
        - value(before, "kairos_http_requests_total", **broken_, status="5xx")
        == 1
    )
    # Refused by the body limit before routing: no route template yet.
    enroll = {"method": "POST", "route": "unmatched", "status": "4xx"}
    assert (
        value(after, "kairos_http_requests_total", **enroll)
        - value(before, "kairos_http_requests_total", **enroll)
        == 1
    )


def test_metrics_need_the_metrics_token_or_an_admin_key(
    world: World, token_client: TestClient
) -> None:
    study = world.study()
    _, participant_token = world.enrolled_participant(study["id"])
    anonymous = token_client.get("/metrics")
    assert anonymous.status_code == 401
    assert anonymous.headers["content-type"] == "application/problem+json"
    assert token_client.get("/metrics", headers=bearer("not-the-token")).status_code == 401
    for role in (Role.coordinator, Role.researcher):
        forbidden = token_client.get("/metrics", headers=world.staff(role))
        assert forbidden.status_code == 403, role
        assert "admin API key" in forbidden.json()["detail"]
    assert token_client.get("/metrics", headers=bearer(participant_token)).status_code == 403
    assert token_client.get("/metrics", headers={"X-API-Key": METRICS_TOKEN}).status_code == 401
    samples = scrape(token_client, bearer(METRICS_TOKEN))
    assert value(samples, "kairos_database_up") == 1
    scrape(token_client, world.staff(Role.admin))


def test_metrics_off_or_on_a_port_are_not_on_the_api(
    engine: sa.Engine, settings: Settings, clock: SimulatedClock
) -> None:
    for mode in ("off", 65531):
        app = create_app(settings.model_copy(update={"metrics": mode}), clock)
        with TestClient(app) as client:
            assert client.get("/metrics").status_code == 404
            assert "/metrics" not in client.get("/openapi.json").json()["paths"]


def test_a_metrics_port_serves_process_metrics_and_database_state(
    engine: sa.Engine, settings: Settings
) -> None:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = _serve_metrics(
        settings.model_copy(update={"metrics": port}), port, with_database_state=True
    )
    try:
        response = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10)
    finally:
        server.shutdown()
        server.server_close()
    assert response.status_code == 200
    samples = parse(response.text)
    assert value(samples, "kairos_database_up") == 1
    assert ("kairos_outbox_due_notifications", frozenset()) in samples


def _worker(world: World, provider: FcmProvider) -> Worker:
    return Worker(
        world.session_factory,
        world.clock,
        tick_seconds=1,
        worker_id="metrics-worker",
        decider=RecordingDecider(),
        provider=provider,
    )


def test_worker_activity_shows_due_work_lag_push_outcomes_and_the_outbox(
    world: World, fcm: tuple[FcmProvider, fake_fcm.FakeFcm]
) -> None:
    provider, fake = fcm
    fake.plans["dead-phone"] = ["unregistered"]
    person_with_devices(world, "live-phone", "dead-phone")
    fake.plans["busy-phone"] = ["quota"]
    person_with_devices(world, "busy-phone")
    admin = world.staff(Role.admin)
    world.clock.set(DUE + timedelta(seconds=90))  # both decision points are 90 s late
    before = scrape(world.client, admin)
    dp = {"kind": "decision_point"}
    assert value(before, "kairos_due_work_items", **dp) == 2
    assert value(before, "kairos_due_work_oldest_age_seconds", **dp) == 90
    assert value(before, "kairos_outbox_due_notifications") == 0

    _worker(world, provider).run_pending()
    after = scrape(world.client, admin)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    fired = {"kind": "decision_point", "outcome": "fired"}
    assert delta("kairos_due_work_lag_seconds_count", **fired) == 2
    assert delta("kairos_due_work_lag_seconds_sum", **fired) == pytest.approx(180)
    assert delta("kairos_due_work_lag_seconds_bucket", **fired, le="60.0") == 0
    assert delta("kairos_due_work_lag_seconds_bucket", **fired, le="120.0") == 2
    fcm_ = {"provider": "fcm"}
    assert delta("kairos_push_attempts_total", **fcm_, outcome="accepted") == 1
    assert delta("kairos_push_attempts_total", **fcm_, outcome="invalid_token") == 1
    assert delta("kairos_push_attempts_total", **fcm_, outcome="retry") == 1
    assert delta("kairos_push_attempts_total", **fcm_, outcome="rejected") == 0
    assert delta("kairos_notifications_settled_total", status="sent") == 1
    assert delta("kairos_notifications_settled_total", status="retrying") == 1
    assert value(after, "kairos_due_work_items", **dp) == 0
    assert value(after, "kairos_due_work_oldest_age_seconds", **dp) == 0
    # The quota-limited push (due when its decision was made) waits for its retry: due,
    # unsent, and ageing.
    assert value(after, "kairos_outbox_due_notifications") == 1
    assert value(after, "kairos_outbox_oldest_due_age_seconds") == 0
    world.clock.advance(timedelta(seconds=30))
    later = scrape(world.client, admin)
    assert value(later, "kairos_outbox_due_notifications") == 1
    assert value(later, "kairos_outbox_oldest_due_age_seconds") == 30
    # NaN: run_pending is not a tick; no worker has written a heartbeat. So none is active.
    assert math.isnan(later[("kairos_worker_last_tick_age_seconds", frozenset())])
    assert later[("kairos_workers_active", frozenset())] == 0


def test_missed_due_work_is_observed_as_missed(
    world: World, fcm: tuple[FcmProvider, fake_fcm.FakeFcm]
) -> None:
    provider, _ = fcm
    person_with_devices(world, "late-phone")
    admin = world.staff(Role.admin)
    before = scrape(world.client, admin)
    world.clock.set(DUE + timedelta(hours=3))  # past the decision point's grace
    worker = _worker(world, provider)
    worker.tick()
    after = scrape(world.client, admin)
    missed = {"kind": "decision_point", "outcome": "missed"}
    assert (
        value(after, "kairos_due_work_lag_seconds_count", **missed)
        - value(before, "kairos_due_work_lag_seconds_count", **missed)
        == 1
    )
    assert value(after, "kairos_due_work_lag_seconds_bucket", **missed, le="3600.0") == value(
        before, "kairos_due_work_lag_seconds_bucket", **missed, le="3600.0"
    )
    assert value(after, "kairos_worker_last_tick_age_seconds") == 0
    assert value(after, "kairos_workers_active") == 1
    world.clock.advance(timedelta(minutes=2))
    assert value(scrape(world.client, admin), "kairos_worker_last_tick_age_seconds") == 120


def test_active_workers_are_those_that_ticked_within_five_minutes(
    world: World, fcm: tuple[FcmProvider, fake_fcm.FakeFcm]
) -> None:
    provider, _ = fcm
    admin = world.staff(Role.admin)
    # No worker has ever ticked: the age is NaN (no alert compares true on it), and the
    # count says 0, which an alert can see.
    samples = scrape(world.client, admin)
    assert math.isnan(samples[("kairos_worker_last_tick_age_seconds", frozenset())])
    assert samples[("kairos_workers_active", frozenset())] == 0
    first = _worker(world, provider)
    first.tick()
    world.clock.advance(timedelta(minutes=3))
    second = Worker(
        world.session_factory,
        world.clock,
        tick_seconds=1,
        worker_id="second",
        provider=provider,
        decider=decide_nothing,
    )
    second.tick()
    assert value(scrape(world.client, admin), "kairos_workers_active") == 2
    assert world.client.get("/readyz").json()["workers_active"] == 2
    world.clock.advance(timedelta(minutes=2, seconds=1))  # the first ticked 5 min 1 s ago
    samples = scrape(world.client, admin)
    assert value(samples, "kairos_workers_active") == 1
    assert value(samples, "kairos_worker_last_tick_age_seconds") == 121
    world.clock.advance(timedelta(minutes=3))
    samples = scrape(world.client, admin)
    assert samples[("kairos_workers_active", frozenset())] == 0
    readiness = world.client.get("/readyz").json()
    assert readiness["workers_active"] == 0


def test_open_flags_alerts_webhook_and_export_job_states(world: World) -> None:
    study = world.study()
    participant, _ = world.enrolled_participant(study["id"])
    study_id, participant_id = uuid.UUID(study["id"]), uuid.UUID(participant["id"])
    now = world.clock.now()
    with world.session_factory() as session:
        for kind, resolved in (("fatigue", None), ("fatigue", now), ("unreachable", None)):
            session.add(
                CareFlag(
                    participant_id=participant_id,
                    study_id=study_id,
                    kind=kind,
                    detail={},
                    raised_at=now - timedelta(days=1),
                    resolved_at=resolved,
                )
            )
        for severity, acknowledged, webhook in (
            ("critical", None, WebhookStatus.pending),
            ("high", now, WebhookStatus.delivered),
        ):
            session.add(
                Alert(
                    study_id=study_id,
                    participant_id=participant_id,
                    questionnaire_id="daily",
                    item_id="self_harm",
                    severity=severity,
                    message="needs a call",
                    value=1,
                    answered_at=now - timedelta(minutes=5),
                    created_at=now - timedelta(minutes=5),
                    acknowledged_at=acknowledged,
                    webhook_status=webhook,
                    webhook_next_attempt_at=now if webhook == WebhookStatus.pending else None,
                )
            )
        for status in ("pending", "failed", "failed"):
            session.add(export_job(study_id, now, status=status))
        session.commit()
    admin = world.staff(Role.admin)
    samples = scrape(world.client, admin)
    assert value(samples, "kairos_care_flags_open", kind="fatigue") == 1
    assert value(samples, "kairos_care_flags_open", kind="unreachable") == 1
    assert value(samples, "kairos_care_flags_open", kind="non_response") == 0
    assert value(samples, "kairos_alerts_open", severity="critical") == 1
    assert value(samples, "kairos_alerts_open", severity="high") == 0
    assert value(samples, "kairos_alert_webhooks", state="pending") == 1
    assert value(samples, "kairos_alert_webhooks", state="delivered") == 1
    assert value(samples, "kairos_alert_webhook_oldest_pending_age_seconds") == 300
    assert value(samples, "kairos_export_jobs", state="pending") == 1
    assert value(samples, "kairos_export_jobs", state="failed") == 2
    assert value(samples, "kairos_export_jobs", state="running") == 0

    # A webhook nobody answers: the attempt is counted, and the alert gives up (1 attempt).
    deliver_due(
        world.session_factory,
        world.clock,
        WebhookConfig(url="http://127.0.0.1:9/hook", timeout_seconds=1, max_attempts=1),
    )
    after = scrape(world.client, admin)
    assert (
        value(after, "kairos_alert_webhook_attempts_total", result="error")
        - value(samples, "kairos_alert_webhook_attempts_total", result="error")
        == 1
    )
    assert value(after, "kairos_alert_webhooks", state="failed") == 1
    assert value(after, "kairos_alert_webhooks", state="pending") == 0
    assert value(after, "kairos_alert_webhook_oldest_pending_age_seconds") == 0


def _unreachable_url(tmp_path: Path) -> str:
    if is_postgres_run():
        return "postgresql+psycopg://postgres@127.0.0.1:1/nothing"
    return f"sqlite:///{tmp_path}/no/such/dir/kairos.db"


def test_a_scrape_answers_while_the_database_is_unreachable(
    tmp_path: Path, clock: SimulatedClock
) -> None:
    engine = create_db_engine(_unreachable_url(tmp_path))
    try:
        state = DatabaseState(make_session_factory(engine), clock, timeout_seconds=1)
        samples = parse(exposition(exposition_registry(state)).decode())
    finally:
        engine.dispose()
    assert value(samples, "kairos_database_up") == 0
    assert ("kairos_outbox_due_notifications", frozenset()) not in samples
    assert any(name == "kairos_http_requests_total" for name, _ in samples) or any(
        name.startswith("process_") or name.startswith("python_") for name, _ in samples
    )


@pytest.mark.skipif(not is_postgres_run(), reason="statement timeouts are PostgreSQL's")
def test_a_blocked_database_costs_a_scrape_at_most_the_query_timeout(
    engine: sa.Engine, session_factory: sa.orm.sessionmaker[sa.orm.Session], clock: SimulatedClock
) -> None:
    locked = threading.Event()
    release = threading.Event()

    def hold_lock() -> None:
        with engine.connect() as conn, conn.begin():
            conn.execute(sa.text("LOCK TABLE notifications IN ACCESS EXCLUSIVE MODE"))
            locked.set()
            release.wait(30)

    holder = threading.Thread(target=hold_lock)
    holder.start()
    try:
        assert locked.wait(10)
        state = DatabaseState(session_factory, clock, timeout_seconds=0.5)
        started = time.monotonic()
        samples = parse(exposition(exposition_registry(state)).decode())
        elapsed = time.monotonic() - started
    finally:
        release.set()
        holder.join()
    assert value(samples, "kairos_database_up") == 0
    assert elapsed < 5


def test_the_metrics_port_waits_for_a_silent_database_as_its_connection_allows(
    settings: Settings,
) -> None:
    # A server that accepts TCP connections and never answers (what a hung host looks
    # like): the query timeout cannot help, the connection's own timeout must.
    import socket

    with socket.socket() as silent, socket.socket() as probe:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
        probe.close()
        url = f"postgresql+psycopg://postgres@127.0.0.1:{silent.getsockname()[1]}/x"
        server = _serve_metrics(
            settings.model_copy(
                update={"database_url": f"{url}?connect_timeout=2", "metrics": port}
            ),
            port,
            with_database_state=True,
        )
        try:
            started = time.monotonic()
            response = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=30)
            elapsed = time.monotonic() - started
        finally:
            server.shutdown()
            server.server_close()
    assert response.status_code == 200
    assert value(parse(response.text), "kairos_database_up") == 0
    assert elapsed < 10


def test_several_processes_are_summed_through_the_multiprocess_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    directory = tmp_path / "prometheus"
    directory.mkdir()
    script = (
        "from app.core.metrics import PUSH_ATTEMPTS, DUE_WORK_LAG\n"
        "PUSH_ATTEMPTS.labels('fcm', 'invalid_token').inc(2)\n"
        "DUE_WORK_LAG.labels('ema_prompt', 'fired').observe(3.0)\n"
    )
    env = {**os.environ, MULTIPROC_ENV: str(directory)}
    for _ in range(2):
        subprocess.run([sys.executable, "-c", script], env=env, check=True, timeout=60)
    monkeypatch.setenv(MULTIPROC_ENV, str(directory))
    samples = parse(exposition(exposition_registry()).decode())
    invalid = {"provider": "fcm", "outcome": "invalid_token"}
    assert value(samples, "kairos_push_attempts_total", **invalid) == 4
    lag = {"kind": "ema_prompt", "outcome": "fired"}
    assert value(samples, "kairos_due_work_lag_seconds_count", **lag) == 2
    assert value(samples, "kairos_due_work_lag_seconds_bucket", **lag, le="5.0") == 2


def _documented_yaml(heading: str) -> Any:
    text = (Path(__file__).parents[1] / "docs" / "deployment.md").read_text()
    section = text.split(heading, 1)[1]
    block = section.split("```yaml\n", 1)[1].split("```", 1)[0]
    return yaml.safe_load(block)


def test_the_documented_alerting_rules_use_metrics_kairos_exports(
    session_factory: sa.orm.sessionmaker[sa.orm.Session], clock: SimulatedClock
) -> None:
    registry = exposition_registry(DatabaseState(session_factory, clock, timeout_seconds=2))
    exported: set[str] = set()
    suffixes = {"histogram": ("_bucket", "_count", "_sum"), "counter": ("_total",)}
    for family in registry.collect():
        exported |= {family.name + s for s in suffixes.get(family.type, ("",))}
    rules = _documented_yaml("### Alerts to set")["groups"][0]["rules"]
    assert len(rules) >= 10
    for rule in rules:
        assert rule["alert"].startswith("Kairos")
        assert rule["labels"]["severity"] in {"info", "warning", "critical"}
        used = set(re.findall(r"\bkairos_[a-z_]+\b", rule["expr"]))
        assert used, rule["alert"]
        assert used <= exported, (rule["alert"], used - exported)
    scrape = _documented_yaml("A scrape configuration")["scrape_configs"][0]
    assert scrape["metrics_path"] == "/metrics"
    assert scrape["authorization"]["type"] == "Bearer"
