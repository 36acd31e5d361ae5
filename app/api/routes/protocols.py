import uuid
from dataclasses import dataclass
from typing import Annotated, Any

import yaml
from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request

from app.api.auth import AnyStaff, Coordinator
from app.api.deps import DEFAULT_LIMIT, ClockDep, LimitQuery, SessionDep
from app.api.problems import problem_responses
from app.api.schemas.common import Text, Version
from app.api.schemas.protocols import (
    ActivateRequest,
    ActivateResult,
    ProtocolVersionDetail,
    ProtocolVersionOut,
    ProtocolVersionPage,
    ProtocolVersionUploaded,
    ProtocolWarningOut,
    ValidationResult,
)
from app.protocols.example_files import MINIMAL, example_text
from app.protocols.models import ProtocolVersion
from app.protocols.schema import protocol_json_schema
from app.protocols.store import get_version, load_protocol
from app.protocols.warnings import protocol_warnings
from app.studies.models import Study
from app.studies.service import get_study
from app.study_operations import protocol_versions as versions

router = APIRouter(tags=["protocols"], responses=problem_responses(401, 403, 422))

MAX_PROTOCOL_BYTES = 1024 * 1024
_TEXT_TYPES = {
    "application/json",
    "application/yaml",
    "application/x-yaml",
    "text/yaml",
    "text/x-yaml",
    "text/plain",
}


def _document_body() -> dict[str, Any]:
    """Protocol bodies are read raw (YAML or JSON), so the request body is documented here."""
    try:
        minimal = example_text(MINIMAL)
    except OSError:  # an install without the examples folder still serves its schema
        minimal = "kairos_protocol: 1\n"
    return {
        "requestBody": {
            "required": True,
            "description": "The protocol document as YAML or JSON; its JSON Schema is at "
            "`GET /v1/protocols/schema` and docs/protocols.md explains every field.",
            "content": {
                "application/yaml": {"schema": {"type": "string", "examples": [minimal]}},
                "application/json": {
                    "schema": {"type": "object", "examples": [yaml.safe_load(minimal)]}
                },
            },
        }
    }


_DOCUMENT_BODY = _document_body()


@dataclass(frozen=True)
class DocumentBody:
    text: bytes
    content_type: str


async def document_body(request: Request) -> DocumentBody:
    content_type = request.headers.get("content-type", "application/yaml").split(";")[0].strip()
    if content_type not in _TEXT_TYPES:
        raise HTTPException(
            415,
            f"send the protocol as application/yaml or application/json, not {content_type}",
        )
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_PROTOCOL_BYTES:
        raise _too_large()
    text = b""
    async for chunk in request.stream():
        text += chunk
        if len(text) > MAX_PROTOCOL_BYTES:
            raise _too_large()
    if not text.strip():
        raise HTTPException(422, "the request body is empty; send the protocol document")
    return DocumentBody(text, content_type)


def _too_large() -> HTTPException:
    return HTTPException(
        413, f"a protocol document may be at most {MAX_PROTOCOL_BYTES} bytes (1 MiB)"
    )


Document = Annotated[DocumentBody, Depends(document_body)]
VersionPath = Annotated[Version, Path(description="The protocol version: 1, 2, …")]


def _out(study: Study, row: ProtocolVersion) -> ProtocolVersionOut:
    return ProtocolVersionOut.model_validate(
        {**_fields(row), "active": study.active_protocol_version == row.version}
    )


def _uploaded(study: Study, row: ProtocolVersion) -> ProtocolVersionUploaded:
    warnings = [
        ProtocolWarningOut(path=w.path, message=w.message)
        for w in protocol_warnings(load_protocol(row))
    ]
    return ProtocolVersionUploaded(**_out(study, row).model_dump(), warnings=warnings)


def _fields(row: ProtocolVersion) -> dict[str, Any]:
    return {
        name: getattr(row, name) for name in ProtocolVersionOut.model_fields if name != "active"
    }


@router.post(
    "/v1/studies/{study_id}/protocols",
    status_code=201,
    response_model=ProtocolVersionUploaded,
    summary="Upload a protocol version",
    openapi_extra=_DOCUMENT_BODY,
    responses=problem_responses(404, 413, 415),
)
def upload_protocol(
    study_id: uuid.UUID,
    body: Document,
    caller: Coordinator,
    session: SessionDep,
    clock: ClockDep,
    activate: Annotated[
        bool, Query(description="Make it the version new participants get.")
    ] = False,
    note: Annotated[Text, Query(max_length=2000, description="What changed, and why.")] = "",
) -> ProtocolVersionUploaded:
    """Validates the document and stores it as the study's next version (1, 2, …).

    Every CEL expression is compiled and checked against the declared variables. An invalid
    document is a 422 whose `errors` list every problem with its path in the document, e.g.
    `body.policy.rules[2].when`. A study's first version becomes its active version; later
    versions only with `activate=true` or `POST …/activate`. The response lists `warnings`:
    what is allowed but probably not meant (they never block the upload).

    Roles: coordinator, admin.
    """
    study = get_study(session, study_id)
    row = versions.upload_version(
        session,
        clock,
        caller.actor,
        study,
        body.text,
        content_type=body.content_type,
        note=note,
        activate=activate,
    )
    session.commit()
    return _uploaded(study, row)


@router.get(
    "/v1/studies/{study_id}/protocols",
    response_model=ProtocolVersionPage,
    summary="List protocol versions",
    responses=problem_responses(404),
)
def list_protocols(
    study_id: uuid.UUID,
    caller: AnyStaff,
    session: SessionDep,
    limit: LimitQuery = DEFAULT_LIMIT,
    cursor: Annotated[
        uuid.UUID | None, Query(description="`next_cursor` of the previous page.")
    ] = None,
) -> ProtocolVersionPage:
    """Lists a study's protocol versions, oldest first, saying which is active and locked.

    Roles: all staff.
    """
    study = get_study(session, study_id)
    rows, next_cursor = versions.list_versions(session, study, after=cursor, limit=limit)
    return ProtocolVersionPage(items=[_out(study, r) for r in rows], next_cursor=next_cursor)


@router.get(
    "/v1/studies/{study_id}/protocols/{version}",
    response_model=ProtocolVersionDetail,
    summary="Get a protocol version",
    responses=problem_responses(404),
)
def get_protocol(
    study_id: uuid.UUID, version: VersionPath, caller: AnyStaff, session: SessionDep
) -> ProtocolVersionDetail:
    """Returns one version: the normalized document and the source as it was uploaded.

    Roles: all staff.
    """
    study = get_study(session, study_id)
    row = get_version(session, study.id, version)
    return ProtocolVersionDetail.model_validate(
        {
            **_out(study, row).model_dump(),
            "document": row.document,
            "source": row.source,
        }
    )


@router.put(
    "/v1/studies/{study_id}/protocols/{version}",
    response_model=ProtocolVersionUploaded,
    summary="Replace a protocol version nobody has used",
    openapi_extra=_DOCUMENT_BODY,
    responses=problem_responses(404, 409, 413, 415),
)
def replace_protocol(
    study_id: uuid.UUID,
    version: VersionPath,
    body: Document,
    caller: Coordinator,
    session: SessionDep,
    clock: ClockDep,
    note: Annotated[
        Text | None, Query(max_length=2000, description="A new note; left out keeps the old.")
    ] = None,
) -> ProtocolVersionUploaded:
    """Replaces the document of a version that no participant has used yet (a draft).

    A version any participant has used is immutable: this answers 409 and the change must
    be uploaded as a new version.

    Roles: coordinator, admin.
    """
    study = get_study(session, study_id)
    row = get_version(session, study.id, version)
    versions.replace_version(
        session,
        clock,
        caller.actor,
        study,
        row,
        body.text,
        content_type=body.content_type,
        note=note,
    )
    session.commit()
    return _uploaded(study, row)


@router.post(
    "/v1/studies/{study_id}/protocols/{version}/activate",
    response_model=ActivateResult,
    summary="Activate a protocol version",
    responses=problem_responses(404),
)
def activate_protocol(
    study_id: uuid.UUID,
    version: VersionPath,
    body: ActivateRequest,
    caller: Coordinator,
    session: SessionDep,
    clock: ClockDep,
) -> ActivateResult:
    """Makes this version the one new participants get; with `apply_to=all_participants`
    every participant still in the study moves to it as well (a protocol amendment).

    Roles: coordinator, admin.
    """
    study = get_study(session, study_id)
    row = get_version(session, study.id, version)
    moved = versions.activate_version(
        session, clock, caller.actor, study, row, apply_to=body.apply_to
    )
    session.commit()
    return ActivateResult(active_protocol_version=row.version, participants_moved=moved)


@router.post(
    "/v1/protocols/validate",
    response_model=ValidationResult,
    summary="Validate a protocol without storing it",
    openapi_extra=_DOCUMENT_BODY,
    responses=problem_responses(413, 415),
)
def validate_protocol(body: Document, caller: AnyStaff) -> ValidationResult:
    """Checks a document exactly as an upload would, and stores nothing: 200 with the
    normalized document and any `warnings` when valid, 422 listing every problem when not.

    Roles: all staff.
    """
    protocol = versions.validate_document(body.text, content_type=body.content_type)
    document, content_hash = versions.normalize(protocol)
    warnings = [
        ProtocolWarningOut(path=w.path, message=w.message) for w in protocol_warnings(protocol)
    ]
    return ValidationResult(
        valid=True, content_hash=content_hash, document=document, warnings=warnings
    )


@router.get(
    "/v1/protocols/schema",
    summary="The protocol document's JSON Schema",
    response_model=None,
    responses={
        200: {
            "description": "A JSON Schema (draft 2020-12).",
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "examples": [{"$schema": "https://json-schema.org/draft/2020-12/schema"}],
                    }
                }
            },
        }
    },
)
def protocol_schema(caller: AnyStaff) -> dict[str, Any]:
    """The JSON Schema of protocol documents, for editors that validate YAML or JSON files
    (e.g. the YAML language server's `# yaml-language-server: $schema=…`).

    Roles: all staff.
    """
    return protocol_json_schema()
