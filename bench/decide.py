"""Decisions per second of the decision engine for one batch of many participants.

Creates a throwaway PostgreSQL database, fills it with a realistic study (the example
chronic-pain protocol; N participants in four time zones, DAYS days of EMA three times a
day with four items each, hourly step counts), then times ``decide_batch`` on one
decision point per participant, all due at the same minute. Run:

    python bench/decide.py [--participants 10000] [--days 21] [--url postgresql+psycopg://...]
                           [--keep] [--database NAME] [--policy rules|learning]

--keep leaves the filled database in place (filling takes minutes); --database NAME measures
again on a database kept earlier, without filling.

--policy learning fills with the adaptive example instead
(examples/protocols/chronic_pain_adaptive.yaml, a Thompson-sampling rule) with a stored
posterior, and measures it against the same protocol without its learning policy (the rule
table with the learned rule's declared probabilities), alternating, in the same run: the
ratio of the two is the learning policy's cost.

Prints the data volume, then the time for the whole batch in one call and in the chunks a
scheduler would claim. Each measured run is rolled back, so every run decides the same
items from the same state; the last run commits, to show the commit's cost too.
"""

import argparse
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
import yaml
from sqlalchemy.engine import Engine, make_url

from app.alerts.routing import declare_poll_only
from app.audit.service import CLI_ACTOR
from app.core.clock import SimulatedClock
from app.core.db import DatabaseTimeouts, create_db_engine, make_session_factory
from app.core.migrations import upgrade_to_head
from app.decision_rules.engine import decide_batch
from app.decision_rules.models import Decision, PolicyPosterior
from app.protocols.example_files import CHRONIC_PAIN_ADAPTIVE, CHRONIC_PAIN_JITAI, example_text
from app.scheduling.models import ScheduledItem
from app.studies.models import Study, StudyStatus
from app.studies.service import create_study
from app.study_operations.protocol_versions import upload_version

ZONES = ("Europe/Berlin", "Europe/London", "America/New_York", "Asia/Tokyo")
START = datetime(2026, 3, 2, 7, 0, tzinfo=UTC)


@contextmanager
def scratch_database(server_url: str, kept: str | None, keep: bool) -> Iterator[str]:
    """The URL of a new database on the server (or of ``kept``, one kept earlier), dropped
    at the end unless kept."""
    name = kept or f"kairos_bench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(server_url, isolation_level="AUTOCOMMIT")
    if not kept:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        if keep or kept:
            print(f"kept database {name}")
        else:
            with admin.connect() as conn:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def bench_study(url: str, protocol: str) -> tuple[Engine, uuid.UUID]:
    """A migrated database with an active study under the example ``protocol`` (poll-only:
    a benchmark has no care team), and an engine without a statement timeout (filling runs
    statements of minutes; the service's timeout is for requests)."""
    engine = create_db_engine(url, timeouts=DatabaseTimeouts(statement=0))
    upgrade_to_head(engine)
    clock = SimulatedClock(START)
    with make_session_factory(engine)() as session:
        study = create_study(
            session, clock, CLI_ACTOR, slug="bench", name="Bench", status=StudyStatus.active
        )
        declare_poll_only(session, clock, CLI_ACTOR, study, "A benchmark study.")
        upload_version(session, clock, CLI_ACTOR, study, example_text(protocol))
        session.commit()
        return engine, study.id


def fill(url: str, participants: int, days: int, protocol: str = CHRONIC_PAIN_JITAI) -> None:
    engine, study_id = bench_study(url, protocol)
    steps = [
        (
            "participants",
            """INSERT INTO participants (id, study_id, code, timezone, status, status_changed_at,
                 enrolled_at, attributes, protocol_version, created_at, updated_at)
               SELECT gen_random_uuid(), :study, 'B-' || i, (CAST(:zones AS text[]))[1 + i % 4],
                 'active', :start, :start, jsonb_build_object('trauma_history', i % 5 = 0,
                   'pain_phenotype', (ARRAY['nociceptive','neuropathic','nociplastic'])[1 + i % 3],
                   'age', 20 + i % 60, 'baseline_interference', i % 11,
                   'preferred_categories', CASE WHEN i % 2 = 0 THEN '["pain_acceptance"]'::jsonb
                                                ELSE '[]'::jsonb END),
                 1, :start, :start
               FROM generate_series(1, :n) i""",
        ),
        (
            "PAI scores (as onboarding leaves them)",
            """INSERT INTO pai_scores (id, participant_id, protocol_version, outcome, scores,
                 recommendation, reason, computed_at)
               SELECT gen_random_uuid(), id, 1, 'interference', '{}'::jsonb,
                 CASE WHEN attributes->>'pain_phenotype' = 'nociceptive' THEN 'cbt_skill'
                      ELSE 'pain_acceptance' END, 'created', :start
               FROM participants""",
        ),
        (
            "EMA responses",
            """INSERT INTO ema_responses (id, participant_id, study_id, client_id, questionnaire_id,
                 questionnaire_version, protocol_version, answered_at, utc_offset_minutes,
                 received_at, late)
               SELECT gen_random_uuid(), p.id, p.study_id, d || '-' || q.qid, q.qid, 1, 1,
                 p.enrolled_at + make_interval(days => d, hours => q.h), 60,
                 p.enrolled_at + make_interval(days => d, hours => q.h, mins => 2), false
               FROM participants p, generate_series(0, :days - 1) d,
                 (VALUES ('morning', 0), ('checkin', 4), ('evening', 10)) q(qid, h)""",
        ),
        (
            "EMA answers",
            """INSERT INTO ema_answers (id, response_id, participant_id, questionnaire_id, item_id,
                 answered_at, value, numeric_value)
               SELECT gen_random_uuid(), r.id, r.participant_id, r.questionnaire_id, i.item,
                 r.answered_at, to_jsonb(v.x), v.x
               FROM ema_responses r
               CROSS JOIN (VALUES ('pain'), ('interference'), ('acceptance'), ('sleep_duration'))
                 i(item)
               CROSS JOIN LATERAL (SELECT CASE WHEN i.item = 'sleep_duration'
                   THEN 300 + floor(random() * 200) ELSE floor(random() * 11) END
                   + 0 * extract(epoch FROM r.answered_at) AS x) v
               WHERE i.item <> 'sleep_duration' OR r.questionnaire_id = 'morning'""",
        ),
        (
            "hourly steps",
            """INSERT INTO wearable_summaries (id, participant_id, study_id, metric, unit, start_at,
                 end_at, value, source_format, received_at, updated_at)
               SELECT gen_random_uuid(), p.id, p.study_id, 'steps', 'count',
                 p.enrolled_at + make_interval(hours => h),
                 p.enrolled_at + make_interval(hours => h + 1),
                 floor(random() * 600 + 0 * h), 'kairos',
                 p.enrolled_at + make_interval(hours => h + 1, mins => 5),
                 p.enrolled_at + make_interval(hours => h + 1, mins => 5)
               FROM participants p, generate_series(0, :days * 24 - 1) h""",
        ),
    ]
    params = {
        "study": study_id,
        "zones": list(ZONES),
        "start": START,
        "n": participants,
        "days": days,
    }
    with engine.begin() as conn:
        for label, sql in steps:
            began = time.perf_counter()
            count = conn.execute(sa.text(sql), params).rowcount
            print(f"  {label}: {count:,} rows in {time.perf_counter() - began:.1f} s")
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text("VACUUM ANALYZE"))
    engine.dispose()


def add_items(url: str, when: datetime) -> None:
    engine = create_db_engine(url)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                """INSERT INTO scheduled_items (id, participant_id, study_id, protocol_version,
                     kind, slot_key, source_id, sequence, due_at, expires_at, status,
                     created_at, updated_at)
                   SELECT gen_random_uuid(), id, study_id, 1, 'decision_point',
                     'dp:afternoon:bench', 'afternoon', 100, :when, :expires, 'claimed',
                     :when, :when
                   FROM participants"""
            ),
            {"when": when, "expires": when + timedelta(minutes=10)},
        )
    engine.dispose()


def measure(url: str, when: datetime, chunk: int, *, commit: bool = False) -> float:
    engine = create_db_engine(url)
    factory = make_session_factory(engine)
    clock = SimulatedClock(when)
    with factory() as session:
        items = list(session.scalars(sa.select(ScheduledItem).order_by(ScheduledItem.id)))
        began = time.perf_counter()
        for start in range(0, len(items), chunk):
            decide_batch(session, clock, items[start : start + chunk])
        elapsed = time.perf_counter() - began
        if commit:
            committed = time.perf_counter()
            session.commit()
            print(f"  commit of {len(items):,} decisions: {time.perf_counter() - committed:.2f} s")
            summary = session.execute(
                sa.select(Decision.available, sa.func.count()).group_by(Decision.available)
            ).all()
            print(f"  available / unavailable: {dict(summary)}")
        else:
            session.rollback()
    engine.dispose()
    return elapsed


def add_learning(url: str, when: datetime) -> None:
    """Version 2: the adaptive protocol without its learning policy; and a posterior for
    version 1 (so that the learned rule computes its probability rather than falling back)."""
    document = yaml.safe_load(example_text(CHRONIC_PAIN_ADAPTIVE))
    config = document["policy"].pop("thompson_sampling")
    size = 2 * (1 + len(config["features"]))
    engine = create_db_engine(url)
    factory = make_session_factory(engine)
    clock = SimulatedClock(when - timedelta(hours=10))
    with factory() as session:
        study = session.scalars(sa.select(Study)).one()
        upload_version(session, clock, CLI_ACTOR, study, yaml.safe_dump(document))
        session.add(
            PolicyPosterior(
                id=uuid.uuid4(),
                study_id=study.id,
                protocol_version=1,
                previous_id=None,
                scheduled_for=clock.now(),
                computed_at=clock.now(),
                inputs_from=None,
                inputs_to=clock.now(),
                rows_used=500,
                rows_total=500,
                noise_variance=config["noise_variance"],
                mean=[0.5, 0.8, -0.1, -0.3, 0.02, -0.05][:size],
                covariance=[[0.01 if i == j else 0.0 for j in range(size)] for i in range(size)],
                inputs=[],
            )
        )
        # Version 2's PAI recommendations as onboarding leaves them, as for version 1 (else
        # its first decisions would score every participant).
        session.execute(
            sa.text(
                """INSERT INTO pai_scores (id, participant_id, protocol_version, outcome, scores,
                     recommendation, reason, computed_at)
                   SELECT gen_random_uuid(), participant_id, 2, outcome, scores,
                     recommendation, reason, computed_at
                   FROM pai_scores WHERE protocol_version = 1"""
            )
        )
        session.commit()
    engine.dispose()


def use_version(url: str, version: int) -> None:
    engine = create_db_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE participants SET protocol_version = :v"), {"v": version})
        conn.execute(sa.text("UPDATE scheduled_items SET protocol_version = :v"), {"v": version})
    engine.dispose()


def compare_policies(url: str, when: datetime, n: int) -> None:
    """The learning policy (version 1) against its rule table (version 2), alternating."""
    results: dict[str, list[float]] = {"learning": [], "rules": []}
    for version in (1, 2):
        use_version(url, version)
        measure(url, when, n)  # warm-up
    for _ in range(3):
        for version, label in ((1, "learning"), (2, "rules")):
            use_version(url, version)
            results[label].append(measure(url, when, n))
    best = {label: min(runs) for label, runs in results.items()}
    for label, seconds in best.items():
        print(
            f"{label:>8}: {n:,} decisions in {seconds:.2f} s (best of 3) = "
            f"{n / seconds:,.0f} decisions/s"
        )
    print(f"learning / rules: {best['rules'] / best['learning']:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--participants", type=int, default=10_000)
    parser.add_argument("--days", type=int, default=21)
    parser.add_argument("--url", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    parser.add_argument("--keep", action="store_true", help="keep the filled database")
    parser.add_argument("--database", help="measure on this database, kept by --keep")
    parser.add_argument("--policy", choices=("rules", "learning"), default="rules")
    args = parser.parse_args()
    learning = args.policy == "learning"

    # 13:00 UTC on the last day: some of today's EMA and steps exist, later ones do not.
    when = START.replace(hour=13) + timedelta(days=args.days - 1)
    with scratch_database(args.url, args.database, args.keep) as url:
        if not args.database:
            print(f"filling: {args.participants:,} participants, {args.days} days")
            fill(
                url,
                args.participants,
                args.days,
                CHRONIC_PAIN_ADAPTIVE if learning else CHRONIC_PAIN_JITAI,
            )
            add_items(url, when)
            if learning:
                add_learning(url, when)
        else:  # the first run's committed decisions would collide with the new ones
            engine = create_db_engine(url)
            upgrade_to_head(engine)  # kept by an older checkout
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.execute(sa.text("DELETE FROM decisions"))
                conn.execute(sa.text("VACUUM ANALYZE decisions"))
            engine.dispose()
        n = args.participants
        if learning:
            compare_policies(url, when, n)
            return
        measure(url, when, n)  # warm-up: caches, parsed protocol, connection
        for chunk in (n, 1000, 250):
            runs = [measure(url, when, chunk) for _ in range(3)]
            best = min(runs)
            print(
                f"batch of {chunk:>6,}: {n:,} decisions in {best:.2f} s (best of 3) "
                f"= {n / best:,.0f} decisions/s"
            )
        if not args.database:
            measure(url, when, n, commit=True)


if __name__ == "__main__":
    main()
