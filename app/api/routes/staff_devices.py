import uuid

from fastapi import APIRouter

from app.api.auth import AnyStaff, Coordinator
from app.api.deps import ClockDep, SessionDep
from app.api.problems import problem_responses
from app.api.routes.me import device_out
from app.api.schemas.devices import DeviceList, DeviceOut, StaffDeviceUpdate
from app.audit.service import record, record_participant_read
from app.notifications import devices
from app.participants.service import get_participant
from app.studies.service import get_study

router = APIRouter(
    prefix="/v1/studies/{study_id}/participants/{participant_id}/devices",
    tags=["devices"],
    responses=problem_responses(401, 403, 404, 422),
)


@router.get("", response_model=DeviceList, summary="A participant's devices")
def list_devices(
    study_id: uuid.UUID,
    participant_id: uuid.UUID,
    caller: AnyStaff,
    session: SessionDep,
    clock: ClockDep,
) -> DeviceList:
    """The participant's registered devices, to see whether pushes can reach them.

    Push tokens are shown only by their last characters. The read is audited.
    Roles: all staff.
    """
    participant = get_participant(session, get_study(session, study_id), participant_id)
    items = devices.list_devices(session, participant)
    record_participant_read(
        session, clock, caller.actor, participant.id, participant.study_id, "devices"
    )
    session.commit()
    return DeviceList(items=[device_out(d) for d in items])


@router.patch(
    "/{device_id}", response_model=DeviceOut, summary="Enable or disable a participant's device"
)
def set_enabled(
    study_id: uuid.UUID,
    participant_id: uuid.UUID,
    device_id: uuid.UUID,
    body: StaffDeviceUpdate,
    caller: Coordinator,
    session: SessionDep,
    clock: ClockDep,
) -> DeviceOut:
    """Stops (or resumes) pushes to one device, e.g. a phone reported lost.

    Roles: coordinator, admin.
    """
    participant = get_participant(session, get_study(session, study_id), participant_id)
    device = devices.get_device(session, participant, device_id)
    reason = body.reason or f"disabled by {caller.role}"
    devices.set_device_enabled(clock, device, body.enabled, reason)
    record(
        session,
        clock,
        caller.actor,
        "device.update",
        resource_type="device",
        resource_id=device.id,
        study_id=participant.study_id,
        detail={"enabled": body.enabled, "reason": body.reason},
    )
    session.commit()
    return device_out(device)
