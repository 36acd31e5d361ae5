"""The FastAPI application."""

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from app import __version__
from app.api.body_limit import BodyLimitMiddleware
from app.api.forwarded import UntrustedForwardedForWarning
from app.api.observability import RequestObservabilityMiddleware
from app.api.outages import install_outage_handling
from app.api.problems import install_problem_handlers
from app.api.routes import (
    admin,
    alerts,
    analyses,
    care,
    care_team,
    decisions,
    exports,
    fhir,
    health,
    me,
    me_data,
    metrics,
    monitoring,
    participant_data,
    participants,
    protocols,
    simulations,
    staff_devices,
    studies,
)
from app.api.security_headers import SecurityHeadersMiddleware
from app.core.clock import Clock, SystemClock
from app.core.config import Settings, load_settings
from app.core.db import engine_from_settings, make_session_factory
from app.core.malloc import MallocTrimmer, limit_malloc_arenas
from app.core.metrics import exposition_registry
from app.core.migrations import ensure_schema_current, upgrade_to_head
from app.observability.state import DatabaseState
from app.participants.throttle import EnrollmentThrottle
from app.wiring import connect_listeners, worker_from_settings

logger = logging.getLogger(__name__)

DESCRIPTION = """
Kairos delivers just-in-time adaptive interventions for chronic-pain care.

**Staff** (admins, coordinators, researchers) authenticate with an API key: click
*Authorize* and paste it under `BearerToken` or `ApiKeyHeader`. Create the first key with
`kairos create-api-key --role admin`.

**The phone app** exchanges a one-time enrollment code for a participant token with
`POST /v1/enroll`, then sends it as `Authorization: Bearer <token>` to `/v1/me…`.

Every error is an RFC 9457 problem (`application/problem+json`) with `status`, `title`,
`detail`, a stable `code` and, for invalid input, `errors` naming each field and why.
Lists are paginated by cursor: pass `next_cursor` back as `cursor`.
"""

TAGS = [
    {"name": "health", "description": "Liveness and readiness probes."},
    {"name": "studies", "description": "Studies: create, read, update, close, delete."},
    {
        "name": "participants",
        "description": "Participants of a study: pseudonymous "
        "records, enrollment codes, status changes with reasons.",
    },
    {
        "name": "protocols",
        "description": "Study protocol documents: upload (YAML or JSON), validate, versions, "
        "activation. See docs/protocols.md.",
    },
    {
        "name": "decisions",
        "description": "The decision log (a participant's decision history with delivery, "
        "engagement and proximal outcomes) and previews of a protocol's decisions. See "
        "docs/decisions-engine.md.",
    },
    {"name": "devices", "description": "Staff view of participants' push devices."},
    {"name": "enrollment", "description": "The phone app's first call."},
    {"name": "me", "description": "The phone app's own record and devices (participant token)."},
    {
        "name": "exports",
        "description": "Analysis-ready datasets for researchers (CSV, NDJSON, Parquet), "
        "streamed or as background jobs, each with a data dictionary and provenance.",
    },
    {
        "name": "monitoring",
        "description": "Routine outcome monitoring: weekly trends and care-team flags "
        "(non-response, treatment fatigue, unreachable).",
    },
    {
        "name": "care",
        "description": "Care-team reviews (due on a cadence and on flags, escalated when "
        "overdue, completed with a structured outcome), treatment phases (stepped care) and "
        "the therapeutic-inertia measures. See docs/care-team.md.",
    },
    {
        "name": "app data",
        "description": "The phone app sends EMA responses, wearable summaries (also as Open "
        "mHealth data points) and engagement events in idempotent batches, and reads them "
        "back. See docs/ingestion.md.",
    },
    {
        "name": "participant data",
        "description": "Staff review of a participant's EMA responses, wearable summaries, "
        "engagement events and planned schedule (audited), and a test push to their phones.",
    },
    {
        "name": "simulations",
        "description": "A stored protocol version run for synthetic participants on a "
        "virtual clock, in the background, before any patient gets it. See "
        "docs/simulation.md.",
    },
    {
        "name": "alerts",
        "description": "Escalation alerts raised by EMA answers, for the care team.",
    },
    {
        "name": "care-team",
        "description": "Who in a study's care team is sent which alerts (e-mail, the signed "
        "webhook), and when an unacknowledged alert goes to the next level. See "
        "docs/care-team.md.",
    },
    {"name": "administration", "description": "Staff API keys and the audit log (admin)."},
]


def create_app(settings: Settings | None = None, clock: Clock | None = None) -> FastAPI:
    settings = settings or load_settings()
    clock = clock or SystemClock()
    # Before the server starts its request threads: memory stays flat (app/core/malloc.py).
    limit_malloc_arenas(settings.malloc_arena_max)
    engine = engine_from_settings(settings)
    session_factory = make_session_factory(engine)
    # Ingestion publishes participant events; scheduling turns triggers into due rows.
    connect_listeners()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if settings.should_auto_migrate:
            upgrade_to_head(engine)
        else:
            ensure_schema_current(engine)
        worker = None
        if settings.should_run_worker:
            worker = worker_from_settings(session_factory, clock, settings)
            worker.start_in_background()
        # Memory freed by the request threads goes back to the system (app/core/malloc.py).
        trimmer = MallocTrimmer(settings.malloc_trim_seconds)
        trimmer.start()
        try:
            yield
        finally:
            if worker is not None:
                worker.shutdown()
            trimmer.stop()
            engine.dispose()

    app = FastAPI(
        title="Kairos",
        version=__version__,
        description=DESCRIPTION,
        openapi_tags=TAGS,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.clock = clock
    app.state.engine = engine
    app.state.session_factory = session_factory
    app.state.enrollment_throttle = EnrollmentThrottle.from_url(
        settings.throttle_storage_url,
        per_address=settings.enroll_failures_per_address,
        global_limit=settings.enroll_failures_global,
        window_seconds=settings.enroll_throttle_window_seconds,
        timeout_seconds=settings.throttle_storage_timeout_seconds,
    )
    install_problem_handlers(app)
    install_outage_handling(app)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_request_bytes)
    app.add_middleware(
        SecurityHeadersMiddleware,
        docs_paths=[
            path
            for path in (app.docs_url, app.redoc_url, app.swagger_ui_oauth2_redirect_url)
            if path
        ],
        hsts_seconds=settings.hsts_seconds,
    )
    # A request id (and metrics) for every answer, 413s included.
    app.add_middleware(RequestObservabilityMiddleware, metrics=settings.metrics != "off")
    if settings.metrics == "protected":  # a port: served by `kairos serve` (app/cli.py)
        app.state.metrics_registry = exposition_registry(
            DatabaseState(session_factory, clock, settings.metrics_query_timeout_seconds)
        )
    trusted_proxies = settings.trusted_proxies
    if trusted_proxies:
        # Everything after it sees the client address the trusted proxy saw.
        app.add_middleware(
            ProxyHeadersMiddleware, trusted_hosts=[str(network) for network in trusted_proxies]
        )
    # Outermost: sees the peer itself, to warn when an untrusted one forwards.
    app.add_middleware(UntrustedForwardedForWarning, trusted=trusted_proxies)
    # Routes are matched in order: the phone's data endpoints, the busiest by far, first.
    for router in (
        me_data.router,
        health.router,
        studies.router,
        protocols.router,
        participants.router,
        staff_devices.router,
        simulations.router,
        decisions.router,
        me.enroll_router,
        me.router,
        exports.router,
        fhir.router,
        analyses.router,
        monitoring.router,
        monitoring.me_router,
        participant_data.router,
        alerts.router,
        care_team.router,
        care.router,
        admin.router,
    ):
        app.include_router(router)
    if settings.metrics == "protected":
        app.include_router(metrics.router)
    return app
