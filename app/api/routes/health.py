from datetime import timedelta

import sqlalchemy as sa
from fastapi import APIRouter, HTTPException, Request
from sqlalchemy.orm import Session

from app import __version__
from app.api.deps import ClockDep, SessionDep, SettingsDep
from app.api.problems import problem_responses
from app.api.schemas.health import Liveness, Readiness, WorkerStatus
from app.core.clock import Clock
from app.core.config import Environment
from app.core.migrations import current_revision
from app.core.secrets import STAFF_KEY_PREFIX
from app.staff.models import Role
from app.staff.service import authenticate_api_key
from app.worker.models import WorkerHeartbeat

router = APIRouter(tags=["health"])

_RECENT_WORKER = timedelta(minutes=5)


@router.get(
    "/healthz",
    summary="Is the process up?",
    response_model=Liveness,
)
def healthz() -> Liveness:
    """Answers as long as the process serves HTTP; touches nothing else (liveness probe)."""
    return Liveness(version=__version__)


@router.get(
    "/readyz",
    summary="Can the service do its work?",
    response_model=Readiness,
    responses=problem_responses(503),
)
def readyz(
    request: Request, session: SessionDep, clock: ClockDep, settings: SettingsDep
) -> Readiness:
    """Checks that the database answers (readiness probe) and lists recently active workers.

    503 while the database cannot be reached. No credentials needed. In production the
    workers' ids (host names and process ids) are shown only to an admin's API key
    (`Authorization: Bearer ksk_…` or `X-API-Key`); anyone else, the probe included,
    sees how many workers are active and `workers: null`. Unknown credentials are ignored.
    """
    try:
        session.execute(sa.text("SELECT 1"))
        revision = current_revision(session.get_bind().engine)
        workers = session.scalars(
            sa.select(WorkerHeartbeat)
            .where(WorkerHeartbeat.last_tick_at >= clock.now() - _RECENT_WORKER)
            .order_by(WorkerHeartbeat.worker_id)
        ).all()
        show_workers = settings.environment is not Environment.production or _is_admin(
            request, session, clock
        )
    except sa.exc.SQLAlchemyError as exc:
        raise HTTPException(503, f"the database is unreachable: {type(exc).__name__}") from exc
    return Readiness(
        database=session.get_bind().dialect.name,
        schema_revision=revision,
        workers_active=len(workers),
        workers=[WorkerStatus(worker_id=w.worker_id, last_tick_at=w.last_tick_at) for w in workers]
        if show_workers
        else None,
    )


def _is_admin(request: Request, session: Session, clock: Clock) -> bool:
    """Whether the request carries a live admin API key (read from the headers, so that
    the probe stays a public operation in the OpenAPI document)."""
    scheme, _, secret = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        secret = request.headers.get("x-api-key", "")
    secret = secret.strip()
    if not secret.startswith(STAFF_KEY_PREFIX):
        return False
    key = authenticate_api_key(session, clock, secret)
    return key is not None and key.role is Role.admin
