from datetime import datetime
from typing import Annotated

from pydantic import ConfigDict, Field, StringConstraints, model_validator

from app.alerts.models import RouteChannel
from app.api.schemas.common import CheckText, Schema, examples
from app.protocols.questionnaires import Severity

# Deliberately plain (no email-validator dependency): one @, no spaces; the SMTP server
# refuses what it cannot deliver, and that failure is on the alert's timeline.
Address = Annotated[
    str,
    StringConstraints(strip_whitespace=True, max_length=320, pattern=r"^[^@\s]+@[^@\s]+$"),
    CheckText,
]
Label = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=120), CheckText
]

_ROUTES = [
    {
        "level": 0,
        "label": "On-call clinician",
        "channel": "email",
        "address": "on-call@clinic.example",
        "severities": ["high", "critical"],
    },
    {"level": 0, "label": "Clinic pager", "channel": "webhook", "severities": ["critical"]},
    {
        "level": 1,
        "label": "Principal investigator",
        "channel": "email",
        "address": "pi@clinic.example",
        "severities": ["critical"],
    },
]


class RouteIn(Schema):
    model_config = ConfigDict(json_schema_extra=examples(*_ROUTES))

    level: int = Field(
        0,
        ge=0,
        le=9,
        description="0: sent at once; n: sent when the alert is still unacknowledged the "
        "escalation's `escalate_after_minutes` after level n - 1 was sent.",
    )
    label: Label = Field(description="Who this is, for people (e.g. 'On-call clinician').")
    channel: RouteChannel = Field(
        description="email (through KAIROS_SMTP_*) or webhook (the deployment's signed alert "
        "webhook, KAIROS_ALERT_WEBHOOK_URL)."
    )
    address: Address | None = Field(
        None, description="The e-mail address; required for email, absent for webhook."
    )
    severities: list[Severity] = Field(
        default_factory=list,
        description="The alert severities this route receives; empty: every severity.",
    )

    @model_validator(mode="after")
    def _address_for_email(self) -> "RouteIn":
        if self.channel == RouteChannel.email and self.address is None:
            raise ValueError("address: an email route needs an address")
        if self.channel == RouteChannel.webhook and self.address is not None:
            raise ValueError("address: a webhook route has no address (the URL is a setting)")
        return self


class CareTeamIn(Schema):
    model_config = ConfigDict(
        json_schema_extra=examples(
            {"routes": _ROUTES},
            {
                "routes": [],
                "poll_only": True,
                "poll_only_reason": "Study nurse reads open alerts at 9:00 and 17:00 daily.",
            },
        )
    )

    routes: list[RouteIn] = Field(max_length=50, description="Replaces every route.")
    poll_only: bool = Field(
        False,
        description="Declare that nobody is sent this study's alerts (they are only read with "
        "GET …/alerts). Needs no routes and a reason; recorded in the audit log.",
    )
    poll_only_reason: (
        Annotated[str, StringConstraints(strip_whitespace=True, max_length=2000), CheckText] | None
    ) = Field(None, description="Why, and who polls: required with poll_only.")


class RouteOut(Schema):
    model_config = ConfigDict(
        json_schema_extra=examples(
            _ROUTES[0] | {"created_at": "2026-11-20T09:00:00Z", "created_by": "coordinator"}
        )
    )

    level: int
    label: str
    channel: str
    address: str | None
    severities: list[str]
    created_at: datetime
    created_by: str


class CareTeamOut(Schema):
    model_config = ConfigDict(
        json_schema_extra=examples(
            {
                "routes": [
                    r | {"created_at": "2026-11-20T09:00:00Z", "created_by": "coordinator"}
                    for r in _ROUTES
                ],
                "poll_only": False,
                "poll_only_reason": None,
            }
        )
    )

    routes: list[RouteOut]
    poll_only: bool
    poll_only_reason: str | None
