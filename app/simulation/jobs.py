"""Simulations of a stored protocol version, requested through the API and run by a worker
as durable work (leased like exports, retried when a worker dies), into a zip bundle of
report.json, report.html and decisions.csv."""

import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from app.core.bundles import zip_bundle
from app.core.clock import Clock
from app.core.errors import ConflictError, InvalidInputError, NotFoundError
from app.core.leases import LeasedTable, run_one
from app.protocols.store import get_version, load_protocol
from app.simulation.behaviour import BehaviourInvalidError, check_against_protocol, parse_behaviour
from app.simulation.models import SimulationJob, SimulationStatus
from app.simulation.report import write_outputs
from app.simulation.runner import simulate
from app.studies.models import Study

LEASE = timedelta(hours=1)
OUTPUTS = ("report.json", "report.html", "decisions.csv")

JOBS = LeasedTable(
    model=SimulationJob,
    waiting=SimulationStatus.pending,
    held=SimulationStatus.running,
    order_by=SimulationJob.created_at,
    stamps=("started_at",),
)


def request_simulation(
    session: Session,
    clock: Clock,
    requested_by: str,
    study: Study,
    *,
    protocol_version: int | None,
    participants: int,
    days: int,
    seed: int,
    behaviour: str,
) -> SimulationJob:
    """Queue a simulation of a stored version (the active one by default); the caller
    commits. The behaviour model is checked now, so a bad one is a 422, not a failed job."""
    version = protocol_version or study.active_protocol_version
    if version is None:
        raise ConflictError(
            "the study has no protocol version to simulate; upload one first",
            code="no_protocol_version",
        )
    stored = get_version(session, study.id, version)  # 404 naming the version
    try:
        check_against_protocol(parse_behaviour(behaviour), load_protocol(stored))
    except BehaviourInvalidError as exc:
        raise InvalidInputError(
            f"the behaviour model has {len(exc.problems)} problem(s)",
            code="behaviour_invalid",
            field_errors=[(f"behaviour.{path}".rstrip("."), m) for path, m in exc.problems],
        ) from exc
    job = SimulationJob(
        study_id=study.id,
        protocol_version=version,
        participants=participants,
        days=days,
        seed=seed,
        behaviour=behaviour,
        requested_by=requested_by,
        status=SimulationStatus.pending,
        created_at=clock.now(),
    )
    session.add(job)
    session.flush()
    return job


def get_simulation(session: Session, study: Study, job_id: uuid.UUID) -> SimulationJob:
    job = session.get(SimulationJob, job_id)
    if job is None or job.study_id != study.id:
        raise NotFoundError(
            f"study {study.id} has no simulation {job_id}", code="simulation_not_found"
        )
    return job


def bundle_path(export_dir: str, job: SimulationJob) -> Path:
    if job.status != SimulationStatus.done or job.file_name is None:
        raise ConflictError(
            f"simulation {job.id} is {job.status}; download it when its status is done",
            code="simulation_not_ready",
        )
    return Path(export_dir) / job.file_name


def run_next_simulation(
    session_factory: sessionmaker[Session], clock: Clock, export_dir: str, worker_id: str
) -> bool:
    """Claim and run one pending simulation; False when there was none."""

    def work(job_id: uuid.UUID) -> dict[str, Any]:
        with session_factory() as session:
            job = session.get_one(SimulationJob, job_id)
            source = get_version(session, job.study_id, job.protocol_version).source
            slug = session.get_one(Study, job.study_id).slug
            participants, days, seed, behaviour = (
                job.participants,
                job.days,
                job.seed,
                job.behaviour,
            )
        started = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix="kairos-simulation-out-") as scratch:
            out = Path(scratch)
            sim = simulate(
                source,
                participants=participants,
                days=days,
                seed=seed,
                behaviour=parse_behaviour(behaviour),
            )
            try:
                report = write_outputs(sim, out, seconds=time.perf_counter() - started)
            finally:
                sim.close()
            file_name = f"{slug}-simulation-{job_id}.zip"
            with zip_bundle(Path(export_dir), file_name) as bundle:
                for name in OUTPUTS:
                    bundle.write(out / name, name)
        return {"report": report, "file_name": file_name}

    return run_one(
        session_factory,
        clock,
        JOBS,
        worker_id,
        LEASE,
        work,
        done=SimulationStatus.done,
        failed=SimulationStatus.failed,
    )
