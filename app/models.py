"""Every model, imported in one place so Alembic and tests see the whole metadata."""

from app.audit.models import AuditEvent
from app.core.db import Base
from app.notifications.models import Device
from app.participants.models import (
    EnrollmentCode,
    Participant,
    ParticipantStatusChange,
    ParticipantToken,
)
from app.protocols.models import ProtocolVersion
from app.staff.models import ApiKey
from app.studies.models import Study
from app.worker.models import WorkerHeartbeat

__all__ = [
    "ApiKey",
    "AuditEvent",
    "Base",
    "Device",
    "EnrollmentCode",
    "Participant",
    "ParticipantStatusChange",
    "ParticipantToken",
    "ProtocolVersion",
    "Study",
    "WorkerHeartbeat",
]
