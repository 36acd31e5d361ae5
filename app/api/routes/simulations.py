"""Simulating a stored protocol version in the background (docs/simulation.md)."""

import uuid

from fastapi import APIRouter
from fastapi.responses import FileResponse

from app.api.auth import AnyStaff, Coordinator
from app.api.deps import ClockDep, SessionDep, SettingsDep
from app.api.problems import problem_responses
from app.api.schemas.simulations import SimulationOut, SimulationRequest
from app.audit.service import record
from app.simulation import jobs
from app.studies.service import get_study

router = APIRouter(
    prefix="/v1/studies/{study_id}/simulations",
    tags=["simulations"],
    responses=problem_responses(401, 403, 404, 422),
)


@router.post(
    "",
    status_code=202,
    response_model=SimulationOut,
    summary="Simulate a protocol version",
    responses=problem_responses(409),
)
def start_simulation(
    study_id: uuid.UUID,
    body: SimulationRequest,
    caller: Coordinator,
    session: SessionDep,
    clock: ClockDep,
) -> SimulationOut:
    """Queues a simulation of a stored protocol version (the active one by default) for
    synthetic participants over simulated days: a worker runs the real scheduling, decision
    engine, outbox and ingestion on a virtual clock over a scratch database, and stores the
    report. Poll the job; when it is done, its `report` is here and the zip bundle
    (report.json, report.html, decisions.csv) can be downloaded. The same seed gives the
    same output. A bad behaviour model is a 422 naming its fields (`behaviour.…`).

    Roles: coordinator, admin.
    """
    study = get_study(session, study_id)
    job = jobs.request_simulation(
        session,
        clock,
        caller.actor.label,
        study,
        protocol_version=body.protocol_version,
        participants=body.participants,
        days=body.days,
        seed=body.seed,
        behaviour=body.behaviour,
    )
    record(
        session,
        clock,
        caller.actor,
        "simulation.request",
        resource_type="simulation",
        resource_id=job.id,
        study_id=study.id,
        detail={"protocol_version": job.protocol_version, "participants": job.participants},
    )
    session.commit()
    return SimulationOut.model_validate(job)


@router.get("/{job_id}", response_model=SimulationOut, summary="A simulation")
def get_simulation(
    study_id: uuid.UUID, job_id: uuid.UUID, caller: AnyStaff, session: SessionDep
) -> SimulationOut:
    """The simulation's status (pending, running, done or failed, with the error) and, once
    done, its report.

    Roles: all staff.
    """
    job = jobs.get_simulation(session, get_study(session, study_id), job_id)
    return SimulationOut.model_validate(job)


@router.get(
    "/{job_id}/bundle",
    summary="Download a finished simulation",
    response_class=FileResponse,
    responses={
        200: {
            "description": "A zip: report.json, report.html, decisions.csv.",
            "content": {
                "application/zip": {
                    "schema": {"type": "string", "format": "binary", "examples": ["PK…"]}
                }
            },
        },
        **problem_responses(409),
    },
)
def download_simulation(
    study_id: uuid.UUID,
    job_id: uuid.UUID,
    caller: AnyStaff,
    session: SessionDep,
    settings: SettingsDep,
) -> FileResponse:
    """The zip bundle of a finished simulation; 409 while it is pending or running.

    Roles: all staff.
    """
    job = jobs.get_simulation(session, get_study(session, study_id), job_id)
    path = jobs.bundle_path(settings.export_dir, job)
    return FileResponse(path, media_type="application/zip", filename=path.name)
