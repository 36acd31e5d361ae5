"""One error body for every 4xx and 5xx: RFC 9457 problem details (application/problem+json).

Validation errors list every offending field under ``errors`` with its location and the
reason, e.g. ``{"field": "body.timezone", "message": "unknown IANA time zone 'Mars/Base'"}``.
"""

import json
import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.api.security_headers import server_error_headers
from app.core.errors import DomainError
from app.observability.logs import REQUEST_ID_HEADER, request_id_var

logger = logging.getLogger(__name__)

PROBLEM_MEDIA_TYPE = "application/problem+json"

# What FastAPI answers (a 400 without a code) when the JSON parser refuses a body for any
# reason but a syntax error: invalid UTF-8, nesting too deep for it, an integer too long.
_FASTAPI_BODY_PARSE_ERROR = "There was an error parsing the body"


class ProblemResponse(JSONResponse):
    media_type = PROBLEM_MEDIA_TYPE

    def render(self, content: Any) -> bytes:
        # Input with lone surrogates is refused, but a message may quote it: sent as its
        # JSON escape (\ud800) rather than failing to encode the error itself.
        return json.dumps(
            content, ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":")
        ).encode("utf-8", "backslashreplace")


class FieldError(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "field": "body.timezone",
                    "message": "Value error, unknown IANA time zone 'Mars/Base'",
                    "type": "value_error",
                }
            ]
        }
    )

    field: str = Field(description="Where the problem is: body.x, query.y, path.z, header.w.")
    message: str = Field(description="Why the value was refused.")
    type: str = Field(description="A machine-readable kind of error, e.g. missing, value_error.")


class Problem(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "type": "urn:kairos:problem:enrollment_code_used",
                    "title": "Gone",
                    "status": 410,
                    "detail": "this enrollment code has already been used; ask the study "
                    "team for a new one",
                    "instance": "/v1/enroll",
                    "code": "enrollment_code_used",
                    "errors": [
                        {
                            "field": "body.code",
                            "message": "this enrollment code has already been used",
                            "type": "enrollment_code_used",
                        }
                    ],
                }
            ]
        }
    )

    type: str = Field("about:blank", description="A URI naming the kind of problem.")
    title: str = Field(description="A short summary of the kind of problem.")
    status: int = Field(description="The HTTP status code.")
    detail: str = Field(description="What went wrong this time, in words a person can act on.")
    instance: str | None = Field(None, description="The request path.")
    code: str | None = Field(None, description="A stable machine-readable problem name.")
    errors: list[FieldError] | None = Field(
        None, description="Each field that was refused, and why."
    )
    limit: int | None = Field(
        None,
        description="For 413: the limit that was exceeded (bytes of the body, or items of a "
        "batch, as `detail` says).",
    )


def problem_response(
    request: Request,
    status: int,
    title: str,
    detail: str,
    *,
    code: str | None = None,
    errors: list[FieldError] | None = None,
    headers: dict[str, str] | None = None,
    limit: int | None = None,
) -> JSONResponse:
    body = Problem(
        type=f"urn:kairos:problem:{code}" if code else "about:blank",
        title=title,
        status=status,
        detail=detail,
        instance=request.url.path,
        code=code,
        errors=errors,
        limit=limit,
    )
    return ProblemResponse(
        body.model_dump(exclude_none=True),
        status_code=status,
        media_type=PROBLEM_MEDIA_TYPE,
        headers=headers,
    )


def _loc_to_field(loc: tuple[Any, ...] | list[Any]) -> str:
    return ".".join(str(part) for part in loc)


async def _validation_handler(request: Request, exc: Exception) -> JSONResponse:
    if not isinstance(exc, RequestValidationError):  # pragma: no cover
        raise exc
    errors = [_field_error(e) for e in exc.errors()]
    return _validation_problem(request, errors)


def _field_error(error: dict[str, Any]) -> FieldError:
    if error["type"] == "json_invalid":  # FastAPI's location is ("body", <character offset>)
        position = error["loc"][1] if len(error["loc"]) > 1 else "?"
        reason = error.get("ctx", {}).get("error", "syntax error")
        return FieldError(
            field="body",
            message=f"invalid JSON at character {position}: {reason}",
            type="json_invalid",
        )
    return FieldError(field=_loc_to_field(error["loc"]), message=error["msg"], type=error["type"])


def _body_parse_error(exc: StarletteHTTPException) -> FieldError:
    """Why the JSON parser refused the body (FastAPI keeps the parser's error as the cause)."""
    cause = exc.__cause__
    if isinstance(cause, UnicodeDecodeError):
        message = (
            f"the body is not UTF-8 text (byte {cause.start}); JSON is sent as UTF-8, "
            "whatever the charset parameter says"
        )
    elif isinstance(cause, RecursionError):
        message = "the JSON nests arrays and objects too deeply"
    elif isinstance(cause, ValueError) and "digits" in str(cause):
        message = "a number in the JSON has too many digits (at most 4300)"
    else:
        message = "the body is not valid JSON"
    return FieldError(field="body", message=message, type="json_invalid")


def _validation_problem(request: Request, errors: list[FieldError]) -> JSONResponse:
    fields = ", ".join(dict.fromkeys(e.field for e in errors))
    return problem_response(
        request,
        422,
        "Invalid request",
        f"The request has invalid fields: {fields}",
        code="validation_error",
        errors=errors,
    )


async def _domain_handler(request: Request, exc: Exception) -> JSONResponse:
    if not isinstance(exc, DomainError):  # pragma: no cover
        raise exc
    kind = exc.code or "invalid"
    errors = [
        FieldError(field=_body_field(field), message=message, type=kind)
        for field, message in exc.field_errors
    ]
    if exc.field is not None:
        errors.insert(0, FieldError(field=_body_field(exc.field), message=exc.detail, type=kind))
    return problem_response(
        request,
        exc.status_code,
        exc.title,
        exc.detail,
        code=exc.code,
        errors=errors or None,
        limit=exc.extra.get("limit"),
    )


def _body_field(path: str) -> str:
    """A domain field path as a request field: ``rules[2].when`` -> ``body.rules[2].when``."""
    return f"body.{path}" if path else "body"


_TITLES = {
    400: "Bad request",
    401: "Not authenticated",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    410: "Gone",
    413: "Payload too large",
    415: "Unsupported media type",
    422: "Invalid request",
    429: "Too many requests",
}


# The code of an HTTP error raised without one (authentication, routing, media types).
_DEFAULT_CODES = {
    401: "not_authenticated",
    403: "forbidden",
    404: "endpoint_not_found",
    405: "method_not_allowed",
    413: "request_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "too_many_requests",
    503: "database_unavailable",
}


async def _http_handler(request: Request, exc: Exception) -> JSONResponse:
    if not isinstance(exc, StarletteHTTPException):  # pragma: no cover
        raise exc
    detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
    if exc.status_code == 400 and detail == _FASTAPI_BODY_PARSE_ERROR:
        return _validation_problem(request, [_body_parse_error(exc)])
    if exc.status_code == 404 and detail == "Not Found":
        detail = f"no such endpoint: {request.method} {request.url.path}"
    return problem_response(
        request,
        exc.status_code,
        _TITLES.get(exc.status_code, "Error"),
        detail,
        code=getattr(exc, "code", None) or _DEFAULT_CODES.get(exc.status_code),
        headers=dict(exc.headers) if exc.headers else None,
        limit=getattr(exc, "limit", None),
    )


async def _unhandled_handler(request: Request, exc: Exception) -> JSONResponse:
    logger.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    # Answered outside every middleware (by ServerErrorMiddleware): the security headers
    # and the id that the log line carries are added here.
    settings = getattr(request.app.state, "settings", None)
    headers = server_error_headers(settings.hsts_seconds if settings is not None else 0)
    if rid := request_id_var.get():
        headers[REQUEST_ID_HEADER] = rid
    return problem_response(
        request,
        500,
        "Internal server error",
        "An unexpected error occurred; it has been logged. This is a bug in Kairos.",
        headers=headers,
    )


def install_problem_handlers(app: FastAPI) -> None:
    document_problem_media_type(app)
    app.add_exception_handler(RequestValidationError, _validation_handler)
    app.add_exception_handler(DomainError, _domain_handler)
    app.add_exception_handler(StarletteHTTPException, _http_handler)
    app.add_exception_handler(Exception, _unhandled_handler)


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the problem responses an operation can return."""
    descriptions = {
        401: "Missing, unknown or revoked credentials.",
        403: "Authenticated, but this role or participant may not do this.",
        404: "The resource does not exist (or belongs to someone else).",
        409: "The request conflicts with the current state.",
        410: "The code or credential can no longer be used.",
        413: "The request body is larger than the limit the problem names.",
        415: "The request body's media type is not one this endpoint reads.",
        422: "A field is missing or invalid; `errors` names each one and why.",
        429: "Too many attempts; try again after the number of seconds in Retry-After.",
        503: "A service Kairos depends on (the database) is unavailable.",
    }
    responses: dict[int | str, dict[str, Any]] = {
        status: {"model": Problem, "description": descriptions[status]} for status in statuses
    }
    if 429 in responses:
        responses[429]["headers"] = {
            "Retry-After": {
                "description": "Seconds until an attempt is accepted again.",
                "schema": {"type": "integer", "minimum": 1},
            }
        }
    return responses


def document_problem_media_type(app: FastAPI) -> None:
    """Error responses are sent as application/problem+json; say so in the OpenAPI schema.

    FastAPI documents every ``model`` response under the route's media type
    (application/json), so the schema is corrected once, when it is first built.
    """
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = build()
        for operations in schema.get("paths", {}).values():
            for operation in operations.values():
                for status, response in operation.get("responses", {}).items():
                    content = response.get("content", {})
                    if status[0] in "45" and "application/json" in content:
                        content[PROBLEM_MEDIA_TYPE] = content.pop("application/json")
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
