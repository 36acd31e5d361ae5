import uuid
from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import FileResponse, StreamingResponse

from app.api.auth import Researcher
from app.api.deps import ClockDep, SessionDep, SettingsDep
from app.api.problems import problem_responses
from app.api.schemas.common import Instant, Text, Version
from app.api.schemas.exports import ExportJobOut, ExportJobRequest
from app.export import jobs
from app.export.columns import Filters
from app.export.datasets import DATASETS
from app.export.formats import ExportFormat
from app.export.service import prepare_export, stream_export
from app.studies.service import get_study

router = APIRouter(
    prefix="/v1/studies/{study_id}",
    tags=["exports"],
    responses=problem_responses(401, 403, 404, 422),
)


def export_filters(
    participant_id: Annotated[
        list[uuid.UUID] | None,
        Query(description="Only these participants (repeat the parameter); default all."),
    ] = None,
    start: Annotated[
        Instant | None, Query(description="Only records at or after this time (ISO 8601).")
    ] = None,
    end: Annotated[
        Instant | None, Query(description="Only records before this time (ISO 8601).")
    ] = None,
    protocol_version: Annotated[
        Version | None, Query(description="Only records of this protocol version.")
    ] = None,
) -> Filters:
    return Filters(tuple(participant_id or ()), start, end, protocol_version)


FiltersDep = Annotated[Filters, Depends(export_filters)]
DatasetPath = Annotated[Text, Path(max_length=64, description="A dataset of `GET …/exports`.")]
FormatQuery = Annotated[ExportFormat, Query(description="csv, ndjson or parquet.")]

_DATA_CONTENT = {
    "text/csv": {"schema": {"type": "string", "examples": ["participant_id,…\n"]}},
    "application/x-ndjson": {"schema": {"type": "string", "examples": ['{"participant_id": …}\n']}},
    "application/vnd.apache.parquet": {
        "schema": {"type": "string", "format": "binary", "examples": ["PAR1…"]}
    },
}
_DICTIONARY_EXAMPLE = {
    "data_dictionary": {
        "dataset": "ema_answers",
        "description": "EMA in long format: one row per item answer.",
        "columns": [
            {"name": "numeric_value", "type": "number", "unit": None, "meaning": "…"},
        ],
        "protocols": [{"version": 1, "tailoring_variables": [], "proximal_outcomes": []}],
    },
    "provenance": {"kairos_version": "0.1.0", "dataset": "ema_answers", "format": "csv"},
}


@router.get(
    "/exports",
    summary="List the exportable datasets",
    response_model=None,
    responses={
        200: {
            "description": "Dataset names and what each holds.",
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "examples": [{"ema_answers": "EMA in long format: one row per answer."}],
                    }
                }
            },
        }
    },
)
def list_datasets(study_id: uuid.UUID, caller: Researcher, session: SessionDep) -> dict[str, str]:
    """Names the datasets `GET …/exports/{dataset}` serves, with a line on each.

    Roles: researcher, admin.
    """
    get_study(session, study_id)
    return {name: dataset.description for name, dataset in DATASETS.items()}


@router.get(
    "/exports/{dataset}",
    summary="Export a dataset (streamed)",
    response_class=StreamingResponse,
    responses={200: {"description": "The data file.", "content": _DATA_CONTENT}},
)
def export_dataset(
    study_id: uuid.UUID,
    dataset: DatasetPath,
    request: Request,
    caller: Researcher,
    session: SessionDep,
    clock: ClockDep,
    filters: FiltersDep,
    format: FormatQuery = ExportFormat.csv,
) -> StreamingResponse:
    """Streams one dataset as CSV, NDJSON or Parquet; memory stays bounded at any size.

    The data dictionary (every column's type, unit and meaning, and each protocol
    version's tailoring variables and outcomes) and the provenance (Kairos version,
    protocol versions, export time, filters) are at `…/exports/{dataset}/dictionary`
    (the `Link` header points there) and, in Parquet, in the file's metadata. An empty
    result is a valid file with its header. Every export is audited. For very large
    exports use `POST …/export-jobs`, which does not tie up the request.

    Roles: researcher, admin.
    """
    study = get_study(session, study_id)
    prepared = prepare_export(session, clock, caller.actor, study, dataset, format, filters)
    session.commit()
    factory = request.app.state.session_factory

    def body() -> Iterator[bytes]:
        # Its own session: the stream outlives the request's dependencies.
        with factory() as stream_session:
            yield from stream_export(stream_session, study, prepared)

    dictionary_url = request.url.replace(path=f"{request.url.path}/dictionary")
    return StreamingResponse(
        body(),
        media_type=format.media_type,
        headers={
            "Content-Disposition": f'attachment; filename="{prepared.filename}"',
            "Link": f'<{dictionary_url}>; rel="describedby"',
        },
    )


@router.get(
    "/exports/{dataset}/dictionary",
    summary="The data dictionary and provenance of an export",
    response_model=None,
    responses={
        200: {
            "description": "Columns, protocol definitions and provenance.",
            "content": {
                "application/json": {
                    "schema": {"type": "object", "examples": [_DICTIONARY_EXAMPLE]}
                }
            },
        }
    },
)
def export_dictionary(
    study_id: uuid.UUID,
    dataset: DatasetPath,
    caller: Researcher,
    session: SessionDep,
    clock: ClockDep,
    filters: FiltersDep,
    format: FormatQuery = ExportFormat.csv,
) -> dict[str, Any]:
    """What the same request to `…/exports/{dataset}` holds, described: each column's
    type, unit and meaning, each protocol version's definitions, and the provenance.

    Roles: researcher, admin.
    """
    study = get_study(session, study_id)
    prepared = prepare_export(
        session, clock, caller.actor, study, dataset, format, filters, audit=False
    )
    return {"data_dictionary": prepared.dictionary, "provenance": prepared.provenance}


@router.post(
    "/export-jobs",
    status_code=202,
    response_model=ExportJobOut,
    summary="Start a background export",
)
def start_export_job(
    study_id: uuid.UUID,
    body: ExportJobRequest,
    caller: Researcher,
    session: SessionDep,
    clock: ClockDep,
) -> ExportJobOut:
    """Queues an export that a worker writes as a zip bundle (the data file,
    `data_dictionary.json` and `provenance.json`). Poll the job, then download it.

    Roles: researcher, admin.
    """
    study = get_study(session, study_id)
    filters = Filters(tuple(body.participant_ids), body.start, body.end, body.protocol_version)
    job = jobs.request_job(session, clock, caller.actor, study, body.dataset, body.format, filters)
    session.commit()
    return ExportJobOut.model_validate(job)


@router.get("/export-jobs/{job_id}", response_model=ExportJobOut, summary="A background export")
def get_export_job(
    study_id: uuid.UUID, job_id: uuid.UUID, caller: Researcher, session: SessionDep
) -> ExportJobOut:
    """The job's status: pending, running, done (download it) or failed (with the error).

    Roles: researcher, admin.
    """
    return ExportJobOut.model_validate(jobs.get_job(session, get_study(session, study_id), job_id))


@router.get(
    "/export-jobs/{job_id}/bundle",
    summary="Download a finished background export",
    response_class=FileResponse,
    responses={
        200: {
            "description": "A zip: the data file, data_dictionary.json, provenance.json.",
            "content": {
                "application/zip": {
                    "schema": {"type": "string", "format": "binary", "examples": ["PK…"]}
                }
            },
        },
        **problem_responses(409),
    },
)
def download_export_job(
    study_id: uuid.UUID,
    job_id: uuid.UUID,
    caller: Researcher,
    session: SessionDep,
    settings: SettingsDep,
) -> FileResponse:
    """The zip bundle of a finished job; 409 while it is still pending or running.

    Roles: researcher, admin.
    """
    job = jobs.get_job(session, get_study(session, study_id), job_id)
    path = jobs.bundle_path(settings.export_dir, job)
    return FileResponse(path, media_type="application/zip", filename=path.name)
