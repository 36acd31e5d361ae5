import uuid
from datetime import datetime
from typing import Annotated

from pydantic import ConfigDict, Field, StringConstraints

from app.api.schemas.common import CheckText, PatchSchema, Schema, examples
from app.notifications.models import MAX_PUSH_TOKEN_LENGTH, Platform

PushToken = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_PUSH_TOKEN_LENGTH),
    CheckText,
    Field(description="The FCM registration token of the app on this device."),
]
AppVersion = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64), CheckText
]

_DEVICE_EXAMPLE = {
    "id": "019a8b5e-5e3b-7d4c-9f60-7b8c9d0e1f2a",
    "platform": "android",
    "app_version": "1.4.2",
    "push_token_suffix": "…a1b2c3d4",
    "enabled": True,
    "disabled_reason": None,
    "last_seen_at": "2026-11-20T07:45:00Z",
    "created_at": "2026-11-03T08:13:00Z",
    "updated_at": "2026-11-20T07:45:00Z",
}


class DeviceRegister(Schema):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "push_token": "fcm-token-from-firebase-messaging",
                    "platform": "android",
                    "app_version": "1.4.2",
                }
            ]
        }
    )

    push_token: PushToken
    platform: Platform
    app_version: AppVersion | None = None


class DeviceUpdate(PatchSchema):
    model_config = ConfigDict(
        json_schema_extra=examples({"push_token": "refreshed-fcm-token"}, {"enabled": False})
    )
    nullable = frozenset({"app_version"})

    push_token: PushToken | None = None
    app_version: AppVersion | None = None
    enabled: bool | None = Field(None, description="false stops pushes to this device.")


Reason = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200), CheckText
]


class StaffDeviceUpdate(PatchSchema):
    model_config = ConfigDict(
        json_schema_extra=examples({"enabled": False, "reason": "phone reported lost"})
    )

    enabled: bool
    reason: (
        Annotated[
            str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200), CheckText
        ]
        | None
    ) = None


class DeviceOut(Schema):
    model_config = ConfigDict(json_schema_extra=examples(_DEVICE_EXAMPLE))

    id: uuid.UUID
    platform: Platform
    app_version: str | None
    push_token_suffix: str = Field(description="The end of the push token, to tell devices apart.")
    enabled: bool
    disabled_reason: str | None
    last_seen_at: datetime
    created_at: datetime
    updated_at: datetime


class DeviceList(Schema):
    model_config = ConfigDict(json_schema_extra=examples({"items": [_DEVICE_EXAMPLE]}))

    items: list[DeviceOut]
