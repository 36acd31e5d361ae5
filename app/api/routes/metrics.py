"""GET /metrics: Prometheus metrics, for a bearer token or an admin key (KAIROS_METRICS=protected).

With KAIROS_METRICS set to a port the metrics are served there instead (app/cli.py), and
this route does not exist.
"""

import hmac
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request, Response, Security
from fastapi.security import HTTPAuthorizationCredentials

from app.api.auth import StaffCaller, api_key_scheme, authenticate, bearer_scheme
from app.api.deps import ClockDep, SessionDep
from app.api.problems import problem_responses
from app.core.metrics import CONTENT_TYPE, exposition
from app.staff.models import Role

router = APIRouter(tags=["health"])

EXAMPLE = """\
# HELP kairos_http_requests_total HTTP requests answered, by method, route template \
(unmatched: no route) and status class (2xx, 4xx, 5xx ...).
# TYPE kairos_http_requests_total counter
kairos_http_requests_total{method="POST",route="/v1/me/ema-responses",status="2xx"} 1042.0
# HELP kairos_outbox_oldest_due_age_seconds How long the oldest unsent due notification has \
been due (0: none).
# TYPE kairos_outbox_oldest_due_age_seconds gauge
kairos_outbox_oldest_due_age_seconds 0.0
# HELP kairos_database_up 1 when the last scrape read the state below from the database, else 0.
# TYPE kairos_database_up gauge
kairos_database_up 1.0
"""


def metrics_reader(
    request: Request,
    session: SessionDep,
    clock: ClockDep,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Security(bearer_scheme)],
    api_key: Annotated[str | None, Security(api_key_scheme)],
) -> None:
    """The KAIROS_METRICS_TOKEN bearer token (checked without the database, so a scrape
    works while the database is down), or an admin API key."""
    token = request.app.state.settings.metrics_token
    secret = bearer.credentials if bearer is not None else None
    if (
        token is not None
        and secret is not None
        and hmac.compare_digest(secret.encode(), token.get_secret_value().encode())
    ):
        return
    caller = authenticate(session, clock, bearer, api_key)
    if not isinstance(caller, StaffCaller) or caller.role is not Role.admin:
        raise HTTPException(
            403, "metrics are for the metrics token (KAIROS_METRICS_TOKEN) or an admin API key"
        )


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    description="Metrics in the Prometheus text format: requests and latency by route, due "
    "work and its lag, the outbox, push outcomes, webhook and export job states, open "
    "care-team flags and alerts. Send `Authorization: Bearer <KAIROS_METRICS_TOKEN>` (for "
    "Prometheus) or an admin API key. Database figures are read at scrape time; while the "
    "database is unreachable the scrape still answers, with `kairos_database_up 0`. See "
    "docs/deployment.md for a scrape configuration and alerting rules.",
    response_class=Response,
    responses={
        200: {
            "description": "The metrics (Prometheus text exposition format 0.0.4).",
            "content": {
                "text/plain": {
                    "schema": {"type": "string", "examples": [EXAMPLE]},
                    "example": EXAMPLE,
                }
            },
        },
        **problem_responses(401, 403),
    },
    dependencies=[Depends(metrics_reader)],
)
def metrics(request: Request) -> Response:
    return Response(exposition(request.app.state.metrics_registry), media_type=CONTENT_TYPE)
