from datetime import timedelta

import sqlalchemy as sa
from fastapi import APIRouter, HTTPException

from app import __version__
from app.api.deps import ClockDep, SessionDep
from app.api.problems import problem_responses
from app.api.schemas.health import Liveness, Readiness, WorkerStatus
from app.core.migrations import current_revision
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
def readyz(session: SessionDep, clock: ClockDep) -> Readiness:
    """Checks that the database answers (readiness probe) and lists recently active workers.

    503 while the database cannot be reached.
    """
    try:
        session.execute(sa.text("SELECT 1"))
        revision = current_revision(session.get_bind().engine)
        workers = session.scalars(
            sa.select(WorkerHeartbeat)
            .where(WorkerHeartbeat.last_tick_at >= clock.now() - _RECENT_WORKER)
            .order_by(WorkerHeartbeat.worker_id)
        ).all()
    except sa.exc.SQLAlchemyError as exc:
        raise HTTPException(503, f"the database is unreachable: {type(exc).__name__}") from exc
    return Readiness(
        database=session.get_bind().dialect.name,
        schema_revision=revision,
        workers=[WorkerStatus(worker_id=w.worker_id, last_tick_at=w.last_tick_at) for w in workers],
    )
