"""While the database is unavailable, requests that need it get a 503 problem, not a 500.

``is_database_unavailable`` (app/core/db.py) tells an outage (cannot connect, connection
lost, timed out, pool exhausted, SQLite busy) from a bug; an outage is answered
``503 database_unavailable`` with ``Retry-After`` and logged as one warning line, a bug
still goes to the 500 handler with its traceback. Every operation that takes a database
session documents the 503 in OpenAPI; the schema is amended once, when it is built, so
no route has to list it. See docs/decisions/0008-database-outages.md.
"""

import logging
from collections.abc import Iterator
from typing import Any

import fastapi.routing
import sqlalchemy as sa
from fastapi import FastAPI, Request
from fastapi.dependencies.models import Dependant
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute

from app.api.deps import get_session
from app.api.problems import PROBLEM_MEDIA_TYPE, problem_response, problem_responses
from app.core.db import describe_database_error, is_database_unavailable

logger = logging.getLogger(__name__)

DATABASE_UNAVAILABLE = "database_unavailable"


class DatabaseUnavailableError(Exception):
    """Raised (from the database error) where a route turns any database failure into a
    503, as /readyz does."""


def unavailable_response(request: Request, exc: BaseException) -> JSONResponse:
    retry_after: int = request.app.state.settings.db_retry_after_seconds
    cause = exc.__cause__ if isinstance(exc, DatabaseUnavailableError) else None
    logger.warning(
        "database unavailable on %s %s: %s (answered 503)",
        request.method,
        request.url.path,
        describe_database_error(cause or exc),
    )
    return problem_response(
        request,
        503,
        "Service unavailable",
        "The database is unavailable right now; the request was not completed, and nothing "
        "of it was stored half-way. "
        f"Retry after {retry_after} seconds.",
        code=DATABASE_UNAVAILABLE,
        headers={"Retry-After": str(retry_after)},
    )


async def _database_error_handler(request: Request, exc: Exception) -> JSONResponse:
    if isinstance(exc, DatabaseUnavailableError) or is_database_unavailable(exc):
        return unavailable_response(request, exc)
    raise exc  # a bug: the 500 handler logs it with its traceback


def api_routes(app: FastAPI) -> Iterator[Any]:
    """The app's API routes with their effective path and dependencies (routers included
    with a prefix or dependencies are flattened the way the OpenAPI schema sees them)."""
    iterate = getattr(fastapi.routing, "iter_route_contexts", None)
    for route in iterate(app.routes) if iterate is not None else app.routes:
        if isinstance(getattr(route, "original_route", route), APIRoute):
            yield route


def _needs_session(dependant: Dependant) -> bool:
    return any(dep.call is get_session or _needs_session(dep) for dep in dependant.dependencies)


RESPONSE_503: dict[str, Any] = {
    "description": "The database is unavailable (unreachable, restarting, or too slow to "
    "answer in time); the request was not completed, nothing of it stored half-way. "
    "Retry after the `Retry-After` seconds.",
    "headers": {
        "Retry-After": {
            "description": "Seconds to wait before retrying.",
            "schema": {"type": "integer"},
        }
    },
    "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
}


_GENERIC_503 = problem_responses(503)[503]["description"]


def _add_503(responses: dict[str, Any]) -> None:
    existing = responses.get("503")
    if existing is None:
        responses["503"] = RESPONSE_503
        return
    description = existing.get("description", "")
    if description == _GENERIC_503:
        existing["description"] = RESPONSE_503["description"]
    else:  # another reason for a 503 (e.g. the enrollment throttle's storage): both
        mine = RESPONSE_503["description"]
        existing["description"] = f"{description} Or: {mine[0].lower()}{mine[1:]}"
    existing.setdefault("headers", {}).setdefault(
        "Retry-After", RESPONSE_503["headers"]["Retry-After"]
    )
    existing.setdefault("content", RESPONSE_503["content"])


def document_database_outages(app: FastAPI) -> None:
    """Adds the 503 to every operation whose route takes a database session."""
    build = app.openapi
    amended: list[int] = []  # id of the schema amended, once

    def openapi() -> dict[str, Any]:
        schema = build()
        if id(schema) in amended:
            return schema
        amended.append(id(schema))
        paths = schema.get("paths", {})
        for route in api_routes(app):
            if not route.include_in_schema or not _needs_session(route.dependant):
                continue
            operations = paths.get(route.path_format, {})
            for method in route.methods or ():
                operation = operations.get(method.lower())
                if operation is not None:
                    _add_503(operation.setdefault("responses", {}))
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def install_outage_handling(app: FastAPI) -> None:
    app.add_exception_handler(sa.exc.SQLAlchemyError, _database_error_handler)
    app.add_exception_handler(DatabaseUnavailableError, _database_error_handler)
    document_database_outages(app)
