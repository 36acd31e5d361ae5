"""Demo data: a study with enrolled and invited participants, for trying Kairos locally,
and weeks of simulated participants before them, so that trends, flags, decision histories
and exports have data in them from the start."""

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.alerts.routing import declare_poll_only
from app.audit.service import CLI_ACTOR
from app.core.clock import Clock
from app.core.config import Settings
from app.protocols.example_files import (
    CHRONIC_PAIN_JITAI,
    example_behaviour_text,
    example_text,
)
from app.staff.models import Role
from app.staff.service import create_api_key
from app.studies.models import Study, StudyStatus
from app.studies.service import create_study
from app.study_operations import participants as operations
from app.study_operations.protocol_versions import upload_version

DEMO_STUDY_SLUG = "demo-chronic-pain-jitai"
DEMO_STUDY_NAME = "Demo: JITAI for chronic low back pain"


@dataclass
class DemoCredentials:
    study_id: str
    api_keys: dict[str, str] = field(default_factory=dict)
    participant_tokens: dict[str, str] = field(default_factory=dict)
    enrollment_codes: dict[str, str] = field(default_factory=dict)


def _attributes(
    phenotype: str, trauma: bool, age: int, interference: int, preferred: list[str]
) -> dict[str, object]:
    return {
        "pain_phenotype": phenotype,
        "trauma_history": trauma,
        "age": age,
        "baseline_interference": interference,
        "preferred_categories": preferred,
    }


def simulate_history(database: Path, *, now: datetime, days: int, participants: int) -> int:
    """Create the demo study in a new database with ``participants`` simulated people who
    enrolled ``days`` ago and have lived the shipped example protocol until ``now``,
    through the simulator (the real scheduling, decisions, pushes, ingestion and flags).
    Returns how many pushes they got."""
    from app.simulation.behaviour import parse_behaviour
    from app.simulation.runner import simulate

    sim = simulate(
        example_text(CHRONIC_PAIN_JITAI),
        participants=participants,
        days=days,
        seed=1,
        behaviour=parse_behaviour(example_behaviour_text()),
        start=now - timedelta(days=days),
        database=database,
        study=(DEMO_STUDY_SLUG, DEMO_STUDY_NAME),
    )
    sim.close()
    return sim.pushes_accepted


def seed_demo(session: Session, clock: Clock, settings: Settings) -> DemoCredentials:
    study = session.scalar(sa.select(Study).where(Study.slug == DEMO_STUDY_SLUG))
    if study is None:
        study = create_study(
            session,
            clock,
            CLI_ACTOR,
            slug=DEMO_STUDY_SLUG,
            name=DEMO_STUDY_NAME,
            status=StudyStatus.active,
        )
        declare_poll_only(
            session,
            clock,
            CLI_ACTOR,
            study,
            "A demo study: its alerts are read in the API (GET …/alerts).",
        )
        # The shipped 12-week example: version 1, active, so every participant follows it.
        upload_version(session, clock, CLI_ACTOR, study, example_text(CHRONIC_PAIN_JITAI))
    study.description = (
        "A demo study: pain-acceptance and activity prompts for adults with chronic low back "
        "pain, with five decision points a day."
    )
    creds = DemoCredentials(study_id=str(study.id))
    for role in Role:
        _, key = create_api_key(session, clock, CLI_ACTOR, name=f"demo {role}", role=role)
        creds.api_keys[str(role)] = key
    people = [
        ("P-0001", "Europe/Berlin", _attributes("nociceptive", False, 54, 6, ["movement"])),
        ("P-0002", "America/Chicago", _attributes("nociplastic", True, 38, 7, ["cbt_skill"])),
        ("P-0003", "Asia/Kolkata", _attributes("neuropathic", False, 61, 4, [])),
        ("P-0004", "Australia/Sydney", _attributes("nociplastic", False, 45, 8, ["sleep"])),
    ]
    for index, (code, tz, attributes) in enumerate(people):
        _, enrollment_code, _ = operations.create_participant(
            session,
            clock,
            CLI_ACTOR,
            study,
            code=code,
            timezone=tz,
            attributes=attributes,
            secret_key=settings.secret_key,
            code_ttl_hours=settings.enrollment_code_ttl_hours,
        )
        if index < 2:  # the first two have enrolled with the app already
            session.flush()
            _, token = operations.enroll(
                session, clock, enrollment_code, secret_key=settings.secret_key
            )
            creds.participant_tokens[code] = token
        else:
            creds.enrollment_codes[code] = enrollment_code
    return creds
