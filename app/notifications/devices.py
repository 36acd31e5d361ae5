"""The participant's devices: where pushes go."""

import uuid
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.core.clock import Clock
from app.core.errors import ConflictError, NotFoundError
from app.notifications.models import Device, Platform
from app.participants.models import Participant

TOKEN_MOVED_REASON = "push token registered by another participant"  # noqa: S105


def list_devices(session: Session, participant: Participant) -> Sequence[Device]:
    return session.scalars(
        sa.select(Device).where(Device.participant_id == participant.id).order_by(Device.id)
    ).all()


def get_device(session: Session, participant: Participant, device_id: uuid.UUID) -> Device:
    device = session.get(Device, device_id)
    # Another participant's device is reported as missing, never as forbidden.
    if device is None or device.participant_id != participant.id:
        raise NotFoundError(f"device {device_id} does not exist", code="device_not_found")
    return device


def register_device(
    session: Session,
    clock: Clock,
    participant: Participant,
    *,
    push_token: str,
    platform: Platform,
    app_version: str | None,
) -> tuple[Device, bool]:
    """Register (or refresh) a push token; returns the device and whether it is new.

    Idempotent: the app may call this on every start.
    """
    now = clock.now()
    _disable_token_elsewhere(session, clock, participant, push_token)
    device = session.scalar(
        sa.select(Device).where(
            Device.participant_id == participant.id, Device.push_token == push_token
        )
    )
    created = device is None
    if device is None:
        device = Device(participant_id=participant.id, push_token=push_token, created_at=now)
        session.add(device)
    device.platform = platform
    device.app_version = app_version
    device.enabled = True
    device.disabled_reason = None
    device.last_seen_at = now
    device.updated_at = now
    # A working token again: coordinators no longer see the participant as unreachable.
    participant.unreachable_since = None
    participant.unreachable_reason = None
    session.flush()
    return device, created


def update_device(
    session: Session, clock: Clock, device: Device, changes: dict[str, Any]
) -> Device:
    if "push_token" in changes and changes["push_token"] != device.push_token:
        # The token of the participant's other device: one token is one device, so the
        # app should remove one of the two (nothing is changed here).
        other = session.scalar(
            sa.select(Device.id).where(
                Device.participant_id == device.participant_id,
                Device.push_token == changes["push_token"],
                Device.id != device.id,
            )
        )
        if other is not None:
            raise _token_registered(f"your device {other}")
        participant = session.get_one(Participant, device.participant_id)
        _disable_token_elsewhere(session, clock, participant, changes["push_token"])
    for field, value in changes.items():
        setattr(device, field, value)
    if changes.get("enabled") is True:
        device.disabled_reason = None
    now = clock.now()
    device.last_seen_at = now
    device.updated_at = now
    try:
        session.flush()
    except sa.exc.IntegrityError as exc:  # the same token registered meanwhile, concurrently
        raise _token_registered("another of your devices") from exc
    return device


def _token_registered(where: str) -> ConflictError:
    return ConflictError(
        f"this push token is already registered for {where}; remove one of the two devices instead",
        field="push_token",
        code="push_token_registered",
    )


def set_device_enabled(clock: Clock, device: Device, enabled: bool, reason: str | None) -> Device:
    device.enabled = enabled
    device.disabled_reason = None if enabled else reason
    device.updated_at = clock.now()
    return device


def _disable_token_elsewhere(
    session: Session, clock: Clock, participant: Participant, push_token: str
) -> None:
    # A phone passed on to someone else keeps its token: the earlier participant's
    # prompts must not reach the new owner.
    session.execute(
        sa.update(Device)
        .where(
            Device.push_token == push_token,
            Device.participant_id != participant.id,
            Device.enabled.is_(True),
        )
        .values(enabled=False, disabled_reason=TOKEN_MOVED_REASON, updated_at=clock.now())
        .execution_options(synchronize_session=False)
    )
