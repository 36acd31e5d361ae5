"""Every model, imported in one place so Alembic and tests see the whole metadata."""

from app.alerts.models import Alert, AlertSend, CareRoute, CareTeamSettings
from app.audit.models import AuditEvent
from app.care.models import PhaseChange, Review
from app.core.db import Base
from app.decision_rules.models import Decision, PaiScore, PolicyPosterior, SmartAssignment
from app.ema.models import EmaAnswer, EmaResponse
from app.engagement.models import EngagementEvent
from app.export.models import ExportJob
from app.monitoring.models import CareFlag
from app.notifications.models import DeliveryAttempt, Device, Notification
from app.participants.models import (
    EnrollmentCode,
    Participant,
    ParticipantStatusChange,
    ParticipantToken,
)
from app.protocols.models import ProtocolVersion
from app.scheduling.models import ScheduledItem, ScheduleHorizon
from app.sensing.models import WearableSummary
from app.simulation.models import SimulationJob
from app.staff.models import ApiKey
from app.studies.models import Study
from app.worker.models import WorkerHeartbeat

__all__ = [
    "Alert",
    "AlertSend",
    "ApiKey",
    "AuditEvent",
    "Base",
    "CareFlag",
    "CareRoute",
    "CareTeamSettings",
    "Decision",
    "DeliveryAttempt",
    "Device",
    "EmaAnswer",
    "EmaResponse",
    "EngagementEvent",
    "EnrollmentCode",
    "ExportJob",
    "Notification",
    "PaiScore",
    "Participant",
    "ParticipantStatusChange",
    "ParticipantToken",
    "PhaseChange",
    "PolicyPosterior",
    "ProtocolVersion",
    "Review",
    "ScheduleHorizon",
    "ScheduledItem",
    "SimulationJob",
    "SmartAssignment",
    "Study",
    "WearableSummary",
    "WorkerHeartbeat",
]
