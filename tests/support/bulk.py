"""Many participants with a decision point due at the same instant, inserted in bulk
(multi-process tests and bench/dispatch.py)."""

import uuid
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.audit.service import CLI_ACTOR
from app.core.clock import SimulatedClock
from app.core.ids import new_id
from app.notifications.models import Device, Platform
from app.participants.models import Participant, ParticipantStatus
from app.scheduling.models import ItemKind, ItemStatus, ScheduledItem, ScheduleHorizon
from app.studies.service import create_study
from app.study_operations.protocol_versions import upload_version
from tests.support.protocols import protocol_yaml

CHUNK = 2000


def seed_due_decision_points(session: Session, count: int, due_at: datetime) -> uuid.UUID:
    """A study whose ``count`` active participants (one device each) all have a decision
    point due at ``due_at``; returns the study id."""
    clock = SimulatedClock(due_at - timedelta(days=1))
    study = create_study(
        session, clock, CLI_ACTOR, slug=f"bulk-{uuid.uuid4().hex[:8]}", name="Bulk"
    )
    upload_version(
        session, clock, CLI_ACTOR, study, protocol_yaml(dp_times=["09:00"], ema_times=[])
    )
    session.flush()
    now = clock.now()
    for start in range(0, count, CHUNK):
        ids = [new_id() for _ in range(start, min(count, start + CHUNK))]
        session.execute(
            sa.insert(Participant),
            [
                {
                    "id": pid,
                    "study_id": study.id,
                    "code": f"B-{start + i}",
                    "timezone": "UTC",
                    "status": ParticipantStatus.active,
                    "status_changed_at": now,
                    "enrolled_at": now,
                    "attributes": {},
                    "protocol_version": 1,
                    "created_at": now,
                    "updated_at": now,
                }
                for i, pid in enumerate(ids)
            ],
        )
        session.execute(
            sa.insert(Device),
            [
                {
                    "id": new_id(),
                    "participant_id": pid,
                    "push_token": f"token-{pid}",
                    "platform": Platform.android,
                    "enabled": True,
                    "last_seen_at": now,
                    "created_at": now,
                    "updated_at": now,
                }
                for pid in ids
            ],
        )
        session.execute(
            sa.insert(ScheduledItem),
            [
                {
                    "id": new_id(),
                    "participant_id": pid,
                    "study_id": study.id,
                    "protocol_version": 1,
                    "kind": ItemKind.decision_point,
                    "slot_key": f"dp:morning:{due_at.date().isoformat()}:0",
                    "source_id": "morning",
                    "due_at": due_at,
                    "expires_at": due_at + timedelta(minutes=10),
                    "status": ItemStatus.planned,
                    "created_at": now,
                    "updated_at": now,
                }
                for pid in ids
            ],
        )
        # Planned ahead already, as they would be in a running study (so the workers do not
        # start planning the next days while the test or benchmark runs).
        session.execute(
            sa.insert(ScheduleHorizon),
            [
                {
                    "participant_id": pid,
                    "planned_until": due_at + timedelta(days=3),
                    "updated_at": now,
                }
                for pid in ids
            ],
        )
    return study.id
