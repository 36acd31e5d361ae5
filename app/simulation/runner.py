"""Running a protocol for synthetic participants on a virtual clock.

Everything a live study runs runs here, unchanged: the study and its protocol version are
made through the same use cases as through the API, participants enroll with their codes
and register a phone, the worker fires due schedule rows, decides at decision points with
the real engine and pushes through the outbox; the push channel is a recording one, and the
simulated phones answer through the real ingestion (so triggers, reminders being cancelled,
escalations and monitoring flags all happen). The clock jumps from one thing due to the next
(phone actions on a five-minute grid), so weeks take seconds, and the same seed gives the
same participants, answers and draws.
"""

import heapq
import logging
import math
import random
import re
import tempfile
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from app.alerts.routing import declare_poll_only
from app.audit.service import CLI_ACTOR
from app.core.batches import ItemResult
from app.core.batches import ItemStatus as BatchItemStatus
from app.core.clock import SimulatedClock
from app.core.config import Settings
from app.core.db import create_db_engine, make_session_factory, session_scope
from app.core.migrations import upgrade_to_head
from app.decision_rules.engine import decide_batch
from app.decision_rules.models import Decision
from app.ema.ingest import EmaSubmission, submit_responses
from app.engagement.ingest import EventInput, record_events
from app.engagement.models import EngagementKind
from app.listeners import connect_listeners
from app.notifications.devices import register_device
from app.notifications.models import (
    AttemptOutcome,
    Notification,
    NotificationKind,
    NotificationStatus,
    Platform,
)
from app.notifications.providers import PushMessage, PushResult
from app.participants.models import Participant
from app.protocols.document import Protocol
from app.protocols.tailoring import WearableMetric
from app.scheduling.models import ItemStatus, ScheduledItem
from app.sensing.ingest import SummaryInput, submit_summaries
from app.simulation.behaviour import Behaviour, check_against_protocol
from app.simulation.people import Person, Received, people
from app.studies.models import Study, StudyStatus
from app.studies.service import create_study
from app.study_operations import participants as operations
from app.study_operations.protocol_versions import upload_version, validate_document
from app.worker.runner import Worker

logger = logging.getLogger(__name__)

SECRET = "simulation-secret-key-of-a-scratch-database-0123456789"  # noqa: S105 - scratch only
# The clock moves on this grid: whatever falls due within a step (schedule rows, pushes,
# phone actions) happens at its end, as with a worker that ticks every five minutes (well
# inside the grace a schedule row has before it counts as missed).
ACTION_GRID = timedelta(minutes=5)
# Wearable summaries are uploaded every this often, one summary an hour.
UPLOAD_EVERY = timedelta(hours=3)
# The service's own allowance for phone clocks, so that skewed phones fare as in life.
SKEW = timedelta(minutes=Settings.model_fields["clock_skew_minutes"].default)


class RecordingChannel:
    """The push channel of a simulation: accepts every push and keeps it for the phones;
    some never arrive (``push_loss``), as in life."""

    name = "simulation"
    max_batch = 500

    def __init__(self, loss: float, rng: random.Random) -> None:
        self._loss = loss
        self._rng = rng
        self.arrived: list[PushMessage] = []
        self.accepted = 0

    def send(self, messages: Sequence[PushMessage]) -> list[PushResult]:
        for message in messages:
            self.accepted += 1
            if self._rng.random() >= self._loss:
                self.arrived.append(message)
        return [PushResult(AttemptOutcome.accepted, response="simulated") for _ in messages]

    def take(self) -> list[PushMessage]:
        arrived, self.arrived = self.arrived, []
        return arrived


@dataclass
class Simulation:
    """A finished run: the scratch database holds the simulated study."""

    session_factory: sessionmaker[Session]
    study_id: uuid.UUID
    protocol: Protocol
    start: datetime
    end: datetime
    participants: list[Person]
    seed: int
    pushes_accepted: int
    steps_taken: int
    # Simulated uploads the service rejected, by kind ("ema", "events", "wearable") and
    # reason (with the numbers folded), e.g. from phones whose clocks are off.
    rejections: dict[str, dict[str, int]]
    workdir: Path
    _cleanup: Callable[[], None] = field(repr=False, default=lambda: None)

    def close(self) -> None:
        self._cleanup()


@dataclass(order=True)
class _Action:
    at: datetime
    order: int
    run: Callable[[Session], None] = field(compare=False)


def simulate(
    protocol_source: str,
    *,
    participants: int,
    days: int,
    seed: int,
    behaviour: Behaviour,
    start: datetime | None = None,
    workdir: Path | None = None,
    database: Path | None = None,
    study: tuple[str, str] = ("simulation", "Simulation"),
) -> Simulation:
    """Run the protocol; the caller reads the result and closes it. ``database`` keeps the
    SQLite file (a new one) instead of a scratch one; ``study`` is its (slug, name)."""
    protocol = validate_document(protocol_source)  # 422-style problems before any work
    check_against_protocol(behaviour, protocol)
    owned = tempfile.TemporaryDirectory(prefix="kairos-simulation-") if workdir is None else None
    directory = Path(owned.name) if owned is not None else Path(workdir or ".")
    engine = create_db_engine(f"sqlite:///{database or directory / 'simulation.db'}")
    sa.event.listen(engine, "connect", _scratch_pragmas)
    upgrade_to_head(engine)
    factory = make_session_factory(engine)
    connect_listeners()
    begin = start or datetime(2027, 3, 1, tzinfo=UTC)  # a Monday, weeks before a DST change
    clock = SimulatedClock(begin)
    rng = random.Random(f"{seed}:channel")  # noqa: S311 - a simulation
    channel = RecordingChannel(behaviour.push_loss, rng)
    cohort = people(protocol, behaviour, participants, seed)
    study_id = _set_up(factory, clock, protocol_source, cohort, seed, study)
    clock.set(begin)
    worker = Worker(
        factory,
        clock,
        tick_seconds=60,
        worker_id="simulation",
        decider=decide_batch,
        provider=channel,
    )
    run = _Run(factory, clock, worker, channel, protocol, behaviour, cohort)
    end = begin + timedelta(days=days)
    steps = run.until(end)

    def cleanup() -> None:
        engine.dispose()
        if owned is not None:
            owned.cleanup()

    return Simulation(
        factory,
        study_id,
        protocol,
        begin,
        end,
        cohort,
        seed,
        channel.accepted,
        steps,
        {kind: dict(sorted(found.items())) for kind, found in sorted(run.rejections.items())},
        directory,
        cleanup,
    )


def _set_up(
    factory: sessionmaker[Session],
    clock: SimulatedClock,
    source: str,
    cohort: list[Person],
    seed: int,
    names: tuple[str, str],
) -> uuid.UUID:
    with session_scope(factory) as session:
        study = create_study(
            session,
            clock,
            CLI_ACTOR,
            slug=names[0],
            name=names[1],
            status=StudyStatus.active,
        )
        declare_poll_only(
            session,
            clock,
            CLI_ACTOR,
            study,
            "A simulation on a scratch database: nobody is sent its alerts.",
        )
        upload_version(session, clock, CLI_ACTOR, study, source)
        study_id = study.id
    for person in cohort:
        # Ids from the seed: the decision draws are seeded by participant, so they repeat.
        named = random.Random(f"{seed}:id:{person.index}")  # noqa: S311 - a simulation
        participant_id = uuid.UUID(int=named.getrandbits(128))
        with session_scope(factory) as session:
            study = session.get_one(Study, study_id)
            participant, code, _ = operations.create_participant(
                session,
                clock,
                CLI_ACTOR,
                study,
                timezone=person.timezone,
                secret_key=SECRET,
                code_ttl_hours=48,
                code=f"SIM-{person.index:04d}",
                attributes=person.attributes,
                participant_id=participant_id,
            )
        with session_scope(factory) as session:
            participant, _token = operations.enroll(session, clock, code, secret_key=SECRET)
            register_device(
                session,
                clock,
                participant,
                push_token=f"sim-{person.index}",
                platform=Platform.android,
                app_version="simulation",
            )
            person.participant_id = participant.id
            person.enrolled_at = participant.enrolled_at
    return study_id


class _Run:
    def __init__(
        self,
        factory: sessionmaker[Session],
        clock: SimulatedClock,
        worker: Worker,
        channel: RecordingChannel,
        protocol: Protocol,
        behaviour: Behaviour,
        cohort: list[Person],
    ) -> None:
        self.factory, self.clock, self.worker, self.channel = factory, clock, worker, channel
        self.protocol, self.behaviour = protocol, behaviour
        self.by_id = {p.participant_id: p for p in cohort}
        self.actions: list[_Action] = []
        self.order = 0
        self.answered: set[uuid.UUID] = set()
        self.next_upload = clock.now() + UPLOAD_EVERY
        self.next_flags = clock.now() + timedelta(days=1)
        self.rejections: dict[str, Counter[str]] = defaultdict(Counter)
        self.moderated = any(effect.moderator is not None for effect in behaviour.effects)

    def until(self, end: datetime) -> int:
        steps = 0
        work_due = True
        while self.clock.now() < end:
            if work_due:
                self.worker.run_pending()
                self._react(self.channel.take())
            self._act()
            now = self.clock.now()
            if now >= self.next_upload:
                self._upload_steps(self.next_upload - UPLOAD_EVERY, self.next_upload)
                self.next_upload += UPLOAD_EVERY
            if now >= self.next_flags:
                self.worker.evaluate_flags()
                self.next_flags += timedelta(days=1)
            work_at, other_at = self._next_due()
            at = _on_grid(min(work_at, other_at, end))
            # The worker runs only when rows or pushes are due (phone actions alone do not
            # need it: what they start is due later, and the next worker run expires and
            # plans as it would have).
            work_due = work_at <= at
            self.clock.set(min(max(at, now + ACTION_GRID), end))
            steps += 1
        return steps

    def _next_due(self) -> tuple[datetime, datetime]:
        """When the worker next has work (a schedule row or a push due), and when anything
        else happens (a phone acts, an upload, the daily flags)."""
        now = self.clock.now()
        far = now + timedelta(days=365)
        with self.factory() as session:
            due, send = session.execute(_NEXT_DUE).one()
        work = min([t for t in (due, send) if t is not None], default=far)
        other = min(self.next_upload, self.next_flags)
        if self.actions:
            other = min(other, self.actions[0].at)
        return work, other

    def _schedule(self, at: datetime, run: Callable[[Session], None]) -> None:
        self.order += 1
        heapq.heappush(self.actions, _Action(_on_grid(at), self.order, run))

    def _act(self) -> None:
        now = self.clock.now()
        if not self.actions or self.actions[0].at > now:
            return
        with session_scope(self.factory) as session:
            while self.actions and self.actions[0].at <= now:
                heapq.heappop(self.actions).run(session)

    def _react(self, arrived: list[PushMessage]) -> None:
        if not arrived:
            return
        now = self.clock.now()
        with self.factory() as session:
            rows = {
                n.id: n
                for n in session.scalars(
                    sa.select(Notification).where(
                        Notification.id.in_({m.notification_id for m in arrived})
                    )
                )
            }
            enrolled = dict(
                session.execute(
                    sa.select(Participant.id, Participant.enrolled_at).where(
                        Participant.id.in_({n.participant_id for n in rows.values()})
                    )
                ).all()
            )
            logged = self._logged_tailoring(session, rows.values())
        for message in sorted(arrived, key=lambda m: str(m.notification_id)):
            n = rows[message.notification_id]
            person = self.by_id[n.participant_id]
            if n.kind == NotificationKind.intervention and n.option_id is not None:
                values = {f"attributes.{k}": v for k, v in person.attributes.items()}
                values |= logged.get(n.decision_id, {}) if n.decision_id else {}
                person.received.append(Received(n.option_id, now, values))
                if person.rng.random() < self.behaviour.engagement:
                    self._schedule(now + person.latency(self.behaviour), self._exercise(person, n))
            elif n.scheduled_item_id is not None and n.scheduled_item_id not in self.answered:
                week = (now - (enrolled[n.participant_id] or now)).days // 7
                if person.answers_prompt(self.behaviour, week):
                    at = now + person.latency(self.behaviour)
                    if n.expires_at is None or at < n.expires_at:
                        self.answered.add(n.scheduled_item_id)
                        self._schedule(at, self._answer(person, n))

    def _logged_tailoring(
        self, session: Session, notifications: Iterable[Notification]
    ) -> dict[uuid.UUID, dict[str, Any]]:
        """The tailoring values logged with the decisions behind these pushes, where an
        effect is moderated by one."""
        ids = {n.decision_id for n in notifications if n.decision_id is not None}
        if not self.moderated or not ids:
            return {}
        rows = session.execute(
            sa.select(Decision.id, Decision.tailoring).where(Decision.id.in_(ids))
        )
        return {decision_id: dict(values or {}) for decision_id, values in rows}

    def _answer(self, person: Person, n: Notification) -> Callable[[Session], None]:
        questionnaire_id = str(n.data.get("questionnaire_id", ""))
        prompt_id = n.scheduled_item_id

        def run(session: Session) -> None:
            questionnaire = self.protocol.questionnaire(questionnaire_id)
            at = self.clock.now()
            zone = ZoneInfo(person.timezone)
            submission = EmaSubmission(
                index=0,
                client_id=f"sim-{prompt_id}",
                prompt_id=prompt_id,
                questionnaire_id=questionnaire_id,
                questionnaire_version=questionnaire.version,
                answered_at=person.phone_time(at).astimezone(zone),
                answers=person.answer(self.behaviour, questionnaire, at),
            )
            participant = session.get_one(Participant, person.participant_id)
            outcome = submit_responses(
                session, self.clock, participant, [submission], skew=SKEW, webhook_configured=False
            )
            self._note_rejections(person, "ema", outcome.results)

        return run

    def _exercise(self, person: Person, n: Notification) -> Callable[[Session], None]:
        exercise = str(n.data.get("exercise_id") or n.option_id)

        def run(session: Session) -> None:
            participant = session.get_one(Participant, person.participant_id)
            at = person.phone_time(self.clock.now()).astimezone(ZoneInfo(person.timezone))
            events = [
                EventInput(0, f"sim-open-{n.id}", EngagementKind.prompt_opened, at, n.id),
                EventInput(
                    1,
                    f"sim-done-{n.id}",
                    EngagementKind.exercise_completed,
                    at,
                    n.id,
                    exercise_id=exercise,
                    duration_seconds=300,
                ),
            ]
            results = record_events(session, self.clock, participant, events, skew=SKEW)
            self._note_rejections(person, "events", results)

        return run

    def _note_rejections(self, person: Person, kind: str, results: Sequence[ItemResult]) -> None:
        """A rejection is a simulated phone's mistake (a skewed clock) or the simulator's
        own: counted for the report and logged, never hidden."""
        for result in results:
            if result.status == BatchItemStatus.rejected:
                logger.warning("simulated participant %d: rejected %s", person.index, result.errors)
                for error in result.errors:
                    self.rejections[kind][_folded(f"{error.field}: {error.message}")] += 1

    def _upload_steps(self, start: datetime, end: datetime) -> None:
        with session_scope(self.factory) as session:
            # One query for the cohort, not one per phone (the identity map keeps them).
            participants: dict[uuid.UUID | None, Participant] = {
                p.id: p
                for p in session.scalars(
                    sa.select(Participant).where(Participant.id.in_(list(self.by_id)))
                )
            }
            for person in self.by_id.values():
                participant = participants[person.participant_id]
                zone = ZoneInfo(person.timezone)
                inputs: list[SummaryInput] = []
                hour = start
                while hour < end:
                    inputs.append(
                        SummaryInput(
                            index=len(inputs),
                            client_id=f"sim-steps-{hour.isoformat()}",
                            metric=WearableMetric.steps,
                            unit="count",
                            start_at=person.phone_time(hour),
                            end_at=person.phone_time(hour + timedelta(hours=1)),
                            value=person.steps_in_hour(
                                self.behaviour, hour, hour.astimezone(zone).hour
                            ),
                            source_format="kairos",
                        )
                    )
                    hour += timedelta(hours=1)
                results = submit_summaries(session, self.clock, participant, inputs, skew=SKEW)
                self._note_rejections(person, "wearable", results)


_items = cast(sa.Table, ScheduledItem.__table__).c
_pushes = cast(sa.Table, Notification.__table__).c
# Asked at every clock step: one statement, built once, of the Core tables.
_NEXT_DUE = sa.select(
    sa.select(sa.func.min(_items.due_at).label("due_at"))
    .where(_items.status == ItemStatus.planned)
    .scalar_subquery(),
    sa.select(sa.func.min(sa.func.coalesce(_pushes.next_attempt_at, _pushes.send_at)))
    .where(_pushes.status == NotificationStatus.pending)
    .scalar_subquery(),
)


def _scratch_pragmas(dbapi_connection: Any, _record: Any) -> None:
    """The scratch database is thrown away after the run: a crash may lose it whole, so
    nothing needs to reach the disk before then, and it may be cached in memory."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA synchronous=OFF")
    cursor.execute("PRAGMA cache_size=-65536")  # KiB: 64 MiB at most
    cursor.execute("PRAGMA temp_store=MEMORY")
    cursor.close()


def _on_grid(at: datetime) -> datetime:
    """The first grid point at or after ``at``."""
    grid = ACTION_GRID.total_seconds()
    return datetime.fromtimestamp(math.ceil(at.timestamp() / grid) * grid, UTC)


def _folded(text: str) -> str:
    """A reason with its times and numbers folded, so that alike rejections count as one."""
    return re.sub(r"\d[\d:.+\-T]*", "#", text)
