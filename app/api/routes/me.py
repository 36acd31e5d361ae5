"""The phone app's endpoints: enrollment, the participant's own record and devices."""

import uuid

from fastapi import APIRouter, HTTPException, Request, Response
from limits.errors import StorageError
from sqlalchemy.orm import Session

from app.api.auth import Me
from app.api.deps import ClockDep, SessionDep, SettingsDep
from app.api.problems import problem_responses
from app.api.schemas.devices import DeviceList, DeviceOut, DeviceRegister, DeviceUpdate
from app.api.schemas.me import EnrollRequest, EnrollResponse, MeOut, MeUpdate
from app.api.schemas.prompts import PendingInterventionOut, PendingOut, PendingPromptOut
from app.core.errors import GoneError, NotFoundError
from app.core.metrics import observe_throttled_enrollment
from app.notifications import devices, pending
from app.notifications.models import Device
from app.notifications.outbox import prompt_link
from app.participants import enrollment
from app.participants.models import Participant
from app.participants.throttle import EnrollmentThrottle
from app.scheduling import fired_prompts
from app.studies.models import Study
from app.study_operations import participants as operations

enroll_router = APIRouter(prefix="/v1", tags=["enrollment"])
router = APIRouter(prefix="/v1/me", tags=["me"], responses=problem_responses(401, 403, 422))


def me_out(session: Session, participant: Participant) -> MeOut:
    study = session.get_one(Study, participant.study_id)
    return MeOut(
        id=participant.id,
        code=participant.code,
        study_id=study.id,
        study_name=study.name,
        timezone=participant.timezone,
        status=participant.status,
        enrolled_at=participant.enrolled_at,
    )


def device_out(device: Device) -> DeviceOut:
    return DeviceOut(
        id=device.id,
        platform=device.platform,
        app_version=device.app_version,
        push_token_suffix="…" + device.push_token[-8:],
        enabled=device.enabled,
        disabled_reason=device.disabled_reason,
        last_seen_at=device.last_seen_at,
        created_at=device.created_at,
        updated_at=device.updated_at,
    )


class EnrollmentThrottled(HTTPException):
    def __init__(self, retry_after: int, budget: str) -> None:
        whose = "from this address" if budget == "address" else "from all addresses together"
        super().__init__(
            429,
            f"too many failed enrollment attempts {whose}; try again in {retry_after} "
            "seconds, and check the code with the study team",
            headers={"Retry-After": str(retry_after)},
        )
        self.code = "enrollment_throttled"


class ThrottleUnavailable(HTTPException):
    def __init__(self) -> None:
        super().__init__(
            503,
            "enrollment is briefly unavailable (the throttle's storage cannot be reached); "
            "try again shortly",
            headers={"Retry-After": "5"},
        )
        self.code = "throttle_unavailable"


@enroll_router.post(
    "/enroll",
    status_code=201,
    response_model=EnrollResponse,
    summary="Exchange an enrollment code for a participant token",
    responses={
        **problem_responses(404, 410, 422, 429, 503),
        503: {
            **problem_responses(503)[503],
            "description": "The enrollment throttle's shared storage (KAIROS_THROTTLE_STORAGE_URL) "
            "cannot be reached or does not answer in time (`throttle_unavailable`).",
        },
    },
)
def enroll(
    body: EnrollRequest,
    request: Request,
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
) -> EnrollResponse:
    """Called by the phone app once, with the code the study team gave the participant.

    Returns the participant token that authenticates every `/v1/me` call. A code works
    once: 404 when it is unknown, 410 when it was used, replaced by a newer code, or
    has expired (the `code` field of the problem says which). Codes are case-insensitive;
    dashes and spaces are ignored. No credentials needed.

    Guessing is throttled: after too many failed attempts from one address (an IPv6 client
    by its /64 network), or from all addresses together, within a window
    (KAIROS_ENROLL_FAILURES_PER_ADDRESS, KAIROS_ENROLL_FAILURES_GLOBAL,
    KAIROS_ENROLL_THROTTLE_WINDOW_SECONDS), every attempt gets 429 `enrollment_throttled`
    with `Retry-After` until the window ends, whatever the code, and the code is not
    checked. Successful enrollments do not count.
    """
    throttle: EnrollmentThrottle = request.app.state.enrollment_throttle
    address = request.client.host if request.client else "unknown"
    now = clock.now()
    try:
        refusal = throttle.refusal(address, now)
        if refusal is not None:
            observe_throttled_enrollment(refusal.budget)
            raise EnrollmentThrottled(refusal.retry_after, refusal.budget)
        try:
            participant, token = operations.enroll(
                session, clock, body.code, secret_key=settings.secret_key
            )
        except (NotFoundError, GoneError):
            throttle.record_failure(address, now)
            raise
    except StorageError as exc:
        raise ThrottleUnavailable() from exc
    session.commit()
    return EnrollResponse(access_token=token, participant=me_out(session, participant))


@router.get("", response_model=MeOut, summary="The participant's own record")
def get_me(caller: Me, session: SessionDep) -> MeOut:
    """Who the token belongs to: participant code, study, time zone and status."""
    return me_out(session, caller.participant)


@router.patch("", response_model=MeOut, summary="Update the participant's time zone")
def update_me(body: MeUpdate, caller: Me, session: SessionDep, clock: ClockDep) -> MeOut:
    """The app reports a new time zone (travel, moving); schedules follow local time: prompts
    and decision points not yet fired are re-planned in the new zone."""
    participant = operations.update_own_record(session, clock, caller.participant, body.changes())
    session.commit()
    return me_out(session, participant)


@router.delete("/token", status_code=204, summary="Sign out this app")
def sign_out(caller: Me, session: SessionDep, clock: ClockDep) -> Response:
    """Revokes the token used for this call; the app must enroll again with a new code."""
    enrollment.revoke_token(clock, caller.token)
    session.commit()
    return Response(status_code=204)


@router.get("/devices", response_model=DeviceList, summary="The participant's devices")
def list_devices(caller: Me, session: SessionDep) -> DeviceList:
    """Devices registered for push notifications, oldest first."""
    return DeviceList(
        items=[device_out(d) for d in devices.list_devices(session, caller.participant)]
    )


@router.post(
    "/devices",
    status_code=201,
    response_model=DeviceOut,
    summary="Register this device for push notifications",
    responses={
        200: {
            "model": DeviceOut,
            "description": "The token was already registered; the device was refreshed.",
        }
    },
)
def register_device(
    body: DeviceRegister, response: Response, caller: Me, session: SessionDep, clock: ClockDep
) -> DeviceOut:
    """Registers the app's FCM token. Idempotent: call it on every app start.

    201 for a new device, 200 when the token was already registered (it is re-enabled and
    its platform and app version refreshed). A token registered by another participant
    before (a phone passed on) is disabled for them.
    """
    device, created = devices.register_device(
        session,
        clock,
        caller.participant,
        push_token=body.push_token,
        platform=body.platform,
        app_version=body.app_version,
    )
    session.commit()
    if not created:
        response.status_code = 200
    return device_out(device)


@router.patch(
    "/devices/{device_id}",
    response_model=DeviceOut,
    summary="Update a device",
    responses=problem_responses(404),
)
def update_device(
    device_id: uuid.UUID, body: DeviceUpdate, caller: Me, session: SessionDep, clock: ClockDep
) -> DeviceOut:
    """Refreshes the push token (FCM rotates tokens), the app version, or turns pushes off."""
    device = devices.get_device(session, caller.participant, device_id)
    devices.update_device(session, clock, device, body.changes())
    session.commit()
    return device_out(device)


@router.delete(
    "/devices/{device_id}",
    status_code=204,
    summary="Remove a device",
    responses=problem_responses(404),
)
def remove_device(device_id: uuid.UUID, caller: Me, session: SessionDep) -> Response:
    """Forgets a device (app uninstalled, phone replaced): no more pushes go to it."""
    device = devices.get_device(session, caller.participant, device_id)
    session.delete(device)
    session.commit()
    return Response(status_code=204)


@router.get("/prompts", response_model=PendingOut, summary="Pending prompts and interventions")
def pending_prompts(caller: Me, session: SessionDep, clock: ClockDep) -> PendingOut:
    """What the app should show now: unanswered EMA prompts that have not expired and
    interventions that are still valid, whether or not their push arrived.

    Pushes get lost (phone off, token rotated, battery savers), so the app calls this when
    it opens and shows what it returns. Roles: the participant (token) only.
    """
    now = clock.now()
    participant = caller.participant
    return PendingOut(
        prompts=[
            PendingPromptOut(
                scheduled_item_id=p.item.id,
                notification_id=p.notification.id if p.notification else None,
                schedule_id=p.item.source_id,
                questionnaire_id=p.item.questionnaire_id,
                due_at=p.item.due_at,
                expires_at=p.item.expires_at,
                deep_link=prompt_link(p.item.id),
            )
            for p in fired_prompts.pending_prompts(session, participant, now)
        ],
        interventions=[
            PendingInterventionOut(
                notification_id=n.id,
                scheduled_item_id=n.scheduled_item_id,
                decision_id=n.decision_id,
                option_id=n.option_id,
                title=n.title,
                body=n.body,
                deep_link=n.deep_link,
                data={str(k): str(v) for k, v in (n.data or {}).items()},
                created_at=n.created_at,
                expires_at=n.expires_at,
            )
            for n in pending.pending_interventions(session, participant, now)
        ],
        as_of=now,
    )
