"""A test push: one message to each of a participant's enabled devices, now, through the
real channel, so a coordinator can see a phone receive Kairos' pushes before a study
relies on them. Not study data: nothing enters the outbox or the decision log; a token the
channel reports dead is disabled, as the sender would."""

import uuid
from datetime import timedelta

from sqlalchemy.orm import Session

from app.core.clock import Clock
from app.notifications.devices import list_devices, set_device_enabled
from app.notifications.models import AttemptOutcome, Device
from app.notifications.providers import PushMessage, PushProvider, PushResult
from app.participants.models import Participant

TITLE = "Test notification"
BODY = "Your study team is checking that notifications reach this phone. No action needed."
TTL = timedelta(minutes=10)


def send_test_push(
    session: Session, clock: Clock, participant: Participant, provider: PushProvider
) -> list[tuple[Device, PushResult]]:
    """Push to every enabled device of the participant; each device with its outcome."""
    targets = [d for d in list_devices(session, participant) if d.enabled]
    push_id = uuid.uuid4()
    messages = [
        PushMessage(
            notification_id=push_id,
            device_id=device.id,
            token=device.push_token,
            platform=str(device.platform),
            title=TITLE,
            body=BODY,
            data={"kind": "test", "notification_id": str(push_id)},
            collapse_key="kairos-test",
            ttl=TTL,
        )
        for device in targets
    ]
    results = provider.send(messages) if messages else []
    outcomes = list(zip(targets, results, strict=True))
    for device, result in outcomes:
        if result.outcome is AttemptOutcome.invalid_token:
            set_device_enabled(clock, device, False, f"test push: {result.error_code}")
    return outcomes
