"""Background exports: a request becomes a job row; a worker writes a zip bundle for it.

A browser request for a year of a large study must not time out, so the work is durable
like every other piece of work here: a row, claimed with a lease, retried after a crash.
"""

import json
import logging
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, cast

from sqlalchemy.orm import Session, sessionmaker

from app.audit.service import Actor, ActorKind
from app.core.bundles import zip_bundle
from app.core.clock import Clock
from app.core.errors import ConflictError, NotFoundError
from app.core.leases import LeasedTable, run_one
from app.export.columns import Filters
from app.export.formats import ExportFormat
from app.export.models import ExportJob, ExportStatus
from app.export.service import check_filters, get_dataset, prepare_export, stream_export
from app.studies.models import Study

logger = logging.getLogger(__name__)

LEASE = timedelta(minutes=30)


def request_job(
    session: Session,
    clock: Clock,
    actor: Actor,
    study: Study,
    dataset: str,
    export_format: ExportFormat,
    filters: Filters,
) -> ExportJob:
    get_dataset(dataset)
    check_filters(filters)
    job = ExportJob(
        study_id=study.id,
        dataset=dataset,
        format=export_format.value,
        filters=filters.as_dict(),
        requested_by=actor.label,
        requested_role=actor.role,
        status=ExportStatus.pending,
        created_at=clock.now(),
    )
    session.add(job)
    session.flush()
    return job


def get_job(session: Session, study: Study, job_id: uuid.UUID) -> ExportJob:
    job = session.get(ExportJob, job_id)
    if job is None or job.study_id != study.id:
        raise NotFoundError(f"no export job {job_id} in this study", code="export_job_not_found")
    return job


def bundle_path(export_dir: str, job: ExportJob) -> Path:
    if job.status != ExportStatus.done or job.file_name is None:
        raise ConflictError(
            f"export job {job.id} is {job.status}; download it when its status is done",
            code="export_not_ready",
        )
    return Path(export_dir) / job.file_name


# Jobs wait (pending), are held by one worker while it writes the bundle (running), then
# end done or failed.
JOBS = LeasedTable(
    model=ExportJob,
    waiting=ExportStatus.pending,
    held=ExportStatus.running,
    order_by=ExportJob.created_at,
    stamps=("started_at",),
)


def _filters(raw: dict[str, Any]) -> Filters:
    def when(value: str | None) -> datetime | None:
        return datetime.fromisoformat(value) if value else None

    return Filters(
        participant_ids=tuple(uuid.UUID(p) for p in raw.get("participant_ids", [])),
        start=when(raw.get("start")),
        end=when(raw.get("end")),
        protocol_version=raw.get("protocol_version"),
    )


def run_next_job(
    session_factory: sessionmaker[Session], clock: Clock, export_dir: str, worker_id: str
) -> bool:
    """Claim and run one pending export job; False when there was none."""

    def work(job_id: uuid.UUID) -> dict[str, Any]:
        file_name, size = _write_bundle(session_factory, clock, export_dir, job_id)
        return {"file_name": file_name, "size_bytes": size}

    return run_one(
        session_factory,
        clock,
        JOBS,
        worker_id,
        LEASE,
        work,
        done=ExportStatus.done,
        failed=ExportStatus.failed,
    )


def _write_bundle(
    session_factory: sessionmaker[Session], clock: Clock, export_dir: str, job_id: uuid.UUID
) -> tuple[str, int]:
    with session_factory() as session:
        job = session.get_one(ExportJob, job_id)
        study = session.get_one(Study, job.study_id)
        kind, _, ident = job.requested_by.partition(":")
        actor = Actor(cast(ActorKind, kind), ident or None, job.requested_role)
        prepared = prepare_export(
            session,
            clock,
            actor,
            study,
            job.dataset,
            ExportFormat(job.format),
            _filters(job.filters),
        )
        session.commit()  # the audit record: the export happens now
        directory = Path(export_dir)
        file_name = f"{study.slug}-{job.dataset}-{job.id}.zip"
        with zip_bundle(directory, file_name) as bundle:
            with bundle.open(prepared.filename, "w", force_zip64=True) as data:
                for chunk in stream_export(session, study, prepared):
                    data.write(chunk)
            bundle.writestr("data_dictionary.json", json.dumps(prepared.dictionary, indent=2))
            bundle.writestr("provenance.json", json.dumps(prepared.provenance, indent=2))
        return file_name, (directory / file_name).stat().st_size
