"""FHIR R4 export (Bulk Data NDJSON): a manifest and one streamed file per resource type."""

import uuid
from collections.abc import Iterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Request
from fastapi.responses import StreamingResponse

from app.api.auth import Researcher
from app.api.deps import ClockDep, SessionDep
from app.api.problems import problem_responses
from app.api.routes.exports import FiltersDep
from app.audit.service import record
from app.export import fhir
from app.export.service import check_filters
from app.studies.service import get_study

router = APIRouter(
    prefix="/v1/studies/{study_id}/fhir",
    tags=["exports"],
    responses=problem_responses(401, 403, 404, 422),
)

ResourceType = Literal["Questionnaire", "QuestionnaireResponse", "Observation"]

_MANIFEST_EXAMPLE = {
    "transactionTime": "2026-12-06T21:00:00+00:00",
    "request": "https://kairos.example/v1/studies/019a8b5e-3c1f-7a2b-9d4e-5f6a7b8c9d0e/fhir",
    "requiresAccessToken": True,
    "output": [
        {
            "type": "Questionnaire",
            "url": "https://kairos.example/v1/studies/019a8b5e-3c1f-7a2b-9d4e-5f6a7b8c9d0e/fhir/Questionnaire",
        }
    ],
    "error": [],
}


@router.get(
    "",
    summary="The FHIR export's manifest (Bulk Data layout)",
    response_model=None,
    responses={
        200: {
            "description": "The files of the export, one per resource type.",
            "content": {
                "application/json": {"schema": {"type": "object", "examples": [_MANIFEST_EXAMPLE]}}
            },
        }
    },
)
def fhir_manifest(
    study_id: uuid.UUID, request: Request, caller: Researcher, session: SessionDep, clock: ClockDep
) -> dict[str, Any]:
    """What a FHIR Bulk Data export of the study holds: one NDJSON file per resource type
    (Questionnaire, QuestionnaireResponse, Observation), each streamed from its URL with
    the same filters as the other exports (`participant_id`, `start`, `end`,
    `protocol_version`, passed on). The files are produced when read, so they are never
    stale. See docs/exports.md (FHIR) for the mapping.

    Roles: researcher, admin.
    """
    get_study(session, study_id)
    query = f"?{request.url.query}" if request.url.query else ""
    return {
        "transactionTime": clock.now().isoformat(),
        "request": str(request.url),
        "requiresAccessToken": True,
        "output": [
            {"type": t, "url": f"{str(request.url).split('?')[0]}/{t}{query}"}
            for t in fhir.RESOURCE_TYPES
        ],
        "error": [],
    }


@router.get(
    "/{resource_type}",
    summary="FHIR resources of one type, as NDJSON (streamed)",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "One FHIR R4 resource per line.",
            "content": {
                fhir.MEDIA_TYPE: {
                    "schema": {
                        "type": "string",
                        "examples": [
                            '{"resourceType":"Observation","id":"pain-019a8b5e-6f7a-7b8c-9d0e-'
                            '1f2a3b4c5d6e","status":"final","code":{"coding":[{"system":'
                            '"http://loinc.org","code":"72514-3"}]},"valueQuantity":'
                            '{"value":6.0,"unit":"{score}"}}\n'
                        ],
                    }
                }
            },
        }
    },
)
def fhir_resources(
    study_id: uuid.UUID,
    resource_type: Annotated[ResourceType, Path(description="A resource type of the manifest.")],
    request: Request,
    caller: Researcher,
    session: SessionDep,
    clock: ClockDep,
    filters: FiltersDep,
) -> StreamingResponse:
    """Streams the study's resources of one type in FHIR R4 JSON, one per line (Bulk Data
    NDJSON): the protocol's questionnaires (with `enableWhen`), each EMA response as a
    QuestionnaireResponse (the participant as a pseudonymous identifier), and Observations
    for pain ratings (LOINC 72514-3) and wearable summaries (steps, sleep duration, resting
    heart rate, UCUM units). Audited.

    Roles: researcher, admin.
    """
    study = get_study(session, study_id)
    check_filters(filters)
    record(
        session,
        clock,
        caller.actor,
        "export.fhir",
        resource_type="study",
        resource_id=study.id,
        study_id=study.id,
        detail={"resource_type": resource_type, "filters": filters.as_dict()},
    )
    session.commit()
    factory = request.app.state.session_factory
    generate = fhir.GENERATORS[resource_type]

    def body() -> Iterator[bytes]:
        with factory() as stream_session:
            yield from fhir.lines(generate(stream_session, study, filters))

    return StreamingResponse(
        body(),
        media_type=fhir.MEDIA_TYPE,
        headers={"Content-Disposition": f'attachment; filename="{resource_type}.ndjson"'},
    )
