"""Every model, imported in one place so Alembic and tests see the whole metadata."""

from app.audit.models import AuditEvent
from app.core.db import Base
from app.decision_rules.models import Decision, PaiScore, SmartAssignment
from app.ema.models import EmaAnswer, EmaResponse
from app.engagement.models import EngagementEvent
from app.notifications.models import Device, Notification
from app.participants.models import (
    EnrollmentCode,
    Participant,
    ParticipantStatusChange,
    ParticipantToken,
)
from app.protocols.models import ProtocolVersion
from app.scheduling.models import ScheduledItem
from app.sensing.models import WearableSummary
from app.staff.models import ApiKey
from app.studies.models import Study
from app.worker.models import WorkerHeartbeat

__all__ = [
    "ApiKey",
    "AuditEvent",
    "Base",
    "Decision",
    "Device",
    "EmaAnswer",
    "EmaResponse",
    "EngagementEvent",
    "EnrollmentCode",
    "Notification",
    "PaiScore",
    "Participant",
    "ParticipantStatusChange",
    "ParticipantToken",
    "ProtocolVersion",
    "ScheduledItem",
    "SmartAssignment",
    "Study",
    "WearableSummary",
    "WorkerHeartbeat",
]
