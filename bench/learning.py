"""The learning policy's nightly posterior update: its time for a large study.

Creates a throwaway PostgreSQL database with the adaptive example protocol
(examples/protocols/chronic_pain_adaptive.yaml) and N participants with WEEKS weeks of
history: five decisions a day of the learned rule (randomized, with their tailoring
snapshots), and three EMA check-ins a day whose interference answers are the proximal
outcome. Then it times

- the first update, from the prior over the whole history (the worst case: a study's
  first night, or catching up after the worker was down for weeks);
- the nightly update the day after, over that day's decisions with the whole history in
  the tables (what the worker does every night).

Decisions per second of the learning policy against the rule table: ``bench/decide.py
--policy both``.

Run:

    python bench/learning.py [--participants 10000] [--weeks 6] [--url postgresql+psycopg://...]
                             [--keep] [--database NAME]
"""

import argparse
import resource
import sys
import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent))

from decide import START, ZONES, bench_study, scratch_database

from app.core.clock import SimulatedClock
from app.core.db import DatabaseTimeouts, create_db_engine, make_session_factory
from app.decision_rules.posteriors import update_posterior
from app.protocols.example_files import CHRONIC_PAIN_ADAPTIVE
from app.protocols.store import get_version, load_protocol

# Decisions 2, 4, 6, 8 and 10 hours after 07:00 UTC; check-ins at 0, 4 and 10 hours, so
# most decisions have an interference answer within the outcome's 4 hours.
DECISION_HOURS = (2, 4, 6, 8, 10)

STEPS = [
    (
        "participants",
        """INSERT INTO participants (id, study_id, code, timezone, status, status_changed_at,
             enrolled_at, attributes, protocol_version, created_at, updated_at)
           SELECT gen_random_uuid(), :study, 'L-' || i, (CAST(:zones AS text[]))[1 + i % 4],
             'active', :start, :start, jsonb_build_object('trauma_history', i % 5 = 0,
               'pain_phenotype', (ARRAY['nociceptive','neuropathic','nociplastic'])[1 + i % 3],
               'age', 20 + i % 60, 'baseline_interference', i % 11,
               'preferred_categories', '[]'::jsonb),
             1, :start, :start
           FROM generate_series(1, :n) i""",
    ),
    (
        "decisions of the learned rule",
        """INSERT INTO decisions (id, participant_id, study_id, decision_point_id,
             decision_index, planned_at, decided_at, local_time, timezone, protocol_version,
             study_day, stage, available, tailoring, tailoring_defaulted, rule_id,
             declared_probabilities, excluded, probabilities, randomized, seed, draw, option_id,
             probability, fallback, learning, created_at)
           SELECT gen_random_uuid(), p.id, p.study_id, 'afternoon', d * 5 + k,
             t.at, t.at, to_char(t.at, 'YYYY-MM-DD"T"HH24:MI:SS+00:00'), p.timezone, 1,
             d, 'stage_1', true,
             jsonb_build_object('interference_today', x.i, 'acceptance_today', x.a),
             '[]'::jsonb, 'acceptance_learned',
             '{"pain_acceptance": 0.5, "nothing": 0.5}'::jsonb, '{}'::jsonb,
             '{"pain_acceptance": 0.5, "nothing": 0.5}'::jsonb, true, 1, x.u,
             CASE WHEN x.u < 0.5 THEN 'pain_acceptance' ELSE 'nothing' END, 0.5, false,
             '{"policy": "thompson_sampling", "fallback": true}'::jsonb, t.at
           FROM participants p, generate_series(0, :days - 1) d,
             generate_series(0, 4) k,
             LATERAL (SELECT p.enrolled_at + make_interval(days => d,
               hours => (ARRAY[2, 4, 6, 8, 10])[k + 1]) AS at) t,
             LATERAL (SELECT floor(random() * 11) + 0 * k AS i, floor(random() * 11) + 0 * d AS a,
               random() + 0 * k AS u) x""",
    ),
    (
        "EMA check-ins",
        """INSERT INTO ema_responses (id, participant_id, study_id, client_id, questionnaire_id,
             questionnaire_version, protocol_version, answered_at, utc_offset_minutes,
             received_at, late)
           SELECT gen_random_uuid(), p.id, p.study_id, d || '-' || q.h, 'checkin', 1, 1,
             p.enrolled_at + make_interval(days => d, hours => q.h), 60,
             p.enrolled_at + make_interval(days => d, hours => q.h, mins => 2), false
           FROM participants p, generate_series(0, :days - 1) d,
             (VALUES (0), (4), (10)) q(h)""",
    ),
    (
        "interference answers",
        """INSERT INTO ema_answers (id, response_id, participant_id, questionnaire_id, item_id,
             answered_at, value, numeric_value)
           SELECT gen_random_uuid(), r.id, r.participant_id, r.questionnaire_id, 'interference',
             r.answered_at, to_jsonb(v.x), v.x
           FROM ema_responses r
           CROSS JOIN LATERAL (SELECT floor(random() * 11)
             + 0 * extract(epoch FROM r.answered_at) AS x) v""",
    ),
]


def fill(url: str, participants: int, days: int) -> uuid.UUID:
    engine, study_id = bench_study(url, CHRONIC_PAIN_ADAPTIVE)
    params = {"study": study_id, "zones": list(ZONES), "start": START, "n": participants}
    with engine.begin() as conn:
        for label, sql in STEPS:
            began = time.perf_counter()
            count = conn.execute(sa.text(sql), {**params, "days": days}).rowcount
            print(f"  {label}: {count:,} rows in {time.perf_counter() - began:.1f} s")
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text("VACUUM ANALYZE"))
    engine.dispose()
    return study_id


def timed_update(url: str, study_id: uuid.UUID, scheduled_for: datetime, *, commit: bool) -> None:
    engine = create_db_engine(url, timeouts=DatabaseTimeouts(statement=0))
    factory = make_session_factory(engine)
    clock = SimulatedClock(scheduled_for)
    with factory() as session:
        protocol = load_protocol(get_version(session, study_id, 1))
        began = time.perf_counter()
        cpu = time.process_time()
        row = update_posterior(session, clock, study_id, 1, protocol, scheduled_for)
        elapsed, cpu = time.perf_counter() - began, time.process_time() - cpu
        rows = row.rows_used
        session.commit() if commit else session.rollback()
    engine.dispose()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"  {rows:,} rows used in {elapsed:.1f} s ({cpu:.1f} s CPU here; "
        f"peak RSS so far {peak:.0f} MB)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--participants", type=int, default=10_000)
    parser.add_argument("--weeks", type=int, default=6)
    parser.add_argument("--url", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    parser.add_argument("--keep", action="store_true", help="keep the filled database")
    parser.add_argument("--database", help="measure on this database, kept by --keep")
    args = parser.parse_args()

    days = args.weeks * 7
    with scratch_database(args.url, args.database, args.keep) as url:
        if not args.database:
            print(f"filling: {args.participants:,} participants, {days} days")
            study_id = fill(url, args.participants, days)
        else:
            engine = create_db_engine(url)
            with engine.connect() as conn:
                study_id = conn.scalar(sa.text("SELECT id FROM studies"))
                # The kept database's own length, whatever --weeks says.
                days = int(conn.scalar(sa.text("SELECT max(study_day) + 1 FROM decisions")))
                conn.execute(sa.text("DELETE FROM policy_posteriors"))
                conn.commit()
            engine.dispose()
        # 03:00 UTC after the last day, and the night before it.
        last_night = START.replace(hour=3) + timedelta(days=days)
        print(f"first update, from the prior over {days - 1} days of decisions:")
        timed_update(url, study_id, last_night - timedelta(days=1), commit=True)
        print("the nightly update the day after (one day of decisions, all history in place):")
        timed_update(url, study_id, last_night, commit=False)


if __name__ == "__main__":
    main()
