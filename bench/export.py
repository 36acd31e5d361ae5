"""Export speed and memory: N decision rows on PostgreSQL, as CSV and as Parquet.

Creates a throwaway PostgreSQL database with the example chronic-pain protocol, 1,000
participants and N decision-log rows (five tailoring variables each; with --outcome-data
also notifications, engagement events, EMA answers and wearable summaries for the proximal
outcomes to find, otherwise the outcome queries run but find nothing), then in the same run
measures:

- the ceiling: PostgreSQL's own ``COPY (SELECT …) TO STDOUT`` of the same decision rows;
- Kairos' decisions export (``stream_export``: the MRT long format with tailoring columns,
  delivery, engagement and proximal outcomes) as CSV and as Parquet, each in a fresh
  subprocess so that its peak memory (max RSS) is its own.

Run:

    python bench/export.py [--rows 1000000] [--outcome-data] \
        [--url postgresql+psycopg://postgres@127.0.0.1:5432/test]
"""

import argparse
import json
import resource
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime

import psycopg
import sqlalchemy as sa
from sqlalchemy.engine import make_url

START = datetime(2026, 3, 2, 7, 0, tzinfo=UTC)
PARTICIPANTS = 1_000


# With --outcome-data: a notification for each treated decision (sent; opened for half),
# an interference answer an hour after two decisions in three, an exercise completed 30 min
# after one in three, and an hour of steps around each decision, so that the notification
# join and every proximal outcome query find data.
OUTCOME_DATA = [
    """INSERT INTO notifications (id, participant_id, study_id, kind, decision_id, option_id,
         title, body, data, created_at, send_at, status, sent_at, attempts)
       SELECT gen_random_uuid(), d.participant_id, d.study_id, 'intervention', d.id,
         d.option_id, 'Title', 'Body', '{}'::jsonb, d.decided_at, d.decided_at, 'sent',
         d.decided_at + interval '5 seconds', 1
       FROM decisions d WHERE d.option_id = 'pain_acceptance'""",
    """INSERT INTO engagement_events (id, participant_id, study_id, client_id, kind,
         notification_id, occurred_at, received_at)
       SELECT gen_random_uuid(), n.participant_id, n.study_id, 'open-' || n.id, 'prompt_opened',
         n.id, n.sent_at + interval '10 minutes', n.sent_at + interval '11 minutes'
       FROM notifications n WHERE get_byte(uuid_send(n.id), 15) % 2 = 0""",
    """INSERT INTO engagement_events (id, participant_id, study_id, client_id, kind,
         occurred_at, received_at)
       SELECT gen_random_uuid(), d.participant_id, d.study_id, 'done-' || d.id,
         'exercise_completed', d.decided_at + interval '30 minutes',
         d.decided_at + interval '31 minutes'
       FROM decisions d WHERE d.decision_index % 3 = 0""",
    """WITH r AS (
         INSERT INTO ema_responses (id, participant_id, study_id, client_id, questionnaire_id,
           questionnaire_version, protocol_version, answered_at, utc_offset_minutes,
           received_at, late)
         SELECT gen_random_uuid(), d.participant_id, d.study_id, 'ema-' || d.id, 'evening', 1,
           1, d.decided_at + interval '1 hour', 60, d.decided_at + interval '1 hour', false
         FROM decisions d WHERE d.decision_index % 3 <> 2
         RETURNING id, participant_id, answered_at)
       INSERT INTO ema_answers (id, response_id, participant_id, questionnaire_id, item_id,
         answered_at, value, numeric_value)
       SELECT gen_random_uuid(), r.id, r.participant_id, 'evening', 'interference',
         r.answered_at, to_jsonb(extract(minute FROM r.answered_at)::int % 11),
         extract(minute FROM r.answered_at)::int % 11
       FROM r""",
    """INSERT INTO wearable_summaries (id, participant_id, study_id, metric, unit, start_at,
         end_at, value, source_format, received_at, updated_at)
       SELECT gen_random_uuid(), d.participant_id, d.study_id, 'steps', 'count',
         d.decided_at - interval '30 minutes', d.decided_at + interval '30 minutes',
         d.decision_index % 1000, 'kairos', d.decided_at + interval '1 hour',
         d.decided_at + interval '1 hour'
       FROM decisions d""",
]


def fill(url: str, rows: int, *, outcome_data: bool = False) -> str:
    """The study id, after filling the database."""
    from app.alerts.routing import declare_poll_only
    from app.audit.service import CLI_ACTOR
    from app.core.clock import SimulatedClock
    from app.core.db import create_db_engine, make_session_factory
    from app.core.migrations import upgrade_to_head
    from app.protocols.example_files import CHRONIC_PAIN_JITAI, example_text
    from app.studies.models import StudyStatus
    from app.studies.service import create_study
    from app.study_operations.protocol_versions import upload_version

    engine = create_db_engine(url)
    upgrade_to_head(engine)
    factory = make_session_factory(engine)
    with factory() as session:
        study = create_study(
            session,
            SimulatedClock(START),
            CLI_ACTOR,
            slug="bench-export",
            name="Bench",
            status=StudyStatus.active,
        )
        declare_poll_only(session, SimulatedClock(START), CLI_ACTOR, study, "A benchmark study.")
        upload_version(
            session, SimulatedClock(START), CLI_ACTOR, study, example_text(CHRONIC_PAIN_JITAI)
        )
        session.commit()
        study_id = str(study.id)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                """INSERT INTO participants (id, study_id, code, timezone, status,
                     status_changed_at, enrolled_at, attributes, protocol_version, created_at,
                     updated_at)
                   SELECT gen_random_uuid(), :study, 'B-' || i, 'Europe/Berlin', 'active',
                     :start, :start, '{}'::jsonb, 1, :start, :start
                   FROM generate_series(1, :n) AS i"""
            ),
            {"study": study_id, "start": START, "n": PARTICIPANTS},
        )
        per = rows // PARTICIPANTS
        conn.execute(
            sa.text(
                """INSERT INTO decisions (id, participant_id, study_id, decision_point_id,
                     decision_index, planned_at, decided_at, local_time, timezone,
                     protocol_version, study_day, stage, track, available, tailoring,
                     tailoring_defaulted, declared_probabilities, excluded, probabilities,
                     randomized, seed, draw, option_id, probability, fallback, created_at)
                   SELECT gen_random_uuid(), p.id, p.study_id, 'afternoon', k,
                     :start + k * interval '5 hours', :start + k * interval '5 hours',
                     '2026-03-02T14:00:00+01:00', 'Europe/Berlin', 1, k / 5, 'stage_1', '',
                     true,
                     jsonb_build_object('interference_today', (k % 10)::float,
                       'acceptance_today', (k % 7)::float, 'steps_3h', k % 900,
                       'prompts_today', k % 3, 'days_enrolled', k / 5),
                     '[]'::jsonb, '{"pain_acceptance": 0.6, "nothing": 0.4}'::jsonb,
                     '{}'::jsonb, '{"pain_acceptance": 0.6, "nothing": 0.4}'::jsonb,
                     true, k, random(),
                     CASE WHEN k % 5 < 3 THEN 'pain_acceptance' ELSE 'nothing' END,
                     CASE WHEN k % 5 < 3 THEN 0.6 ELSE 0.4 END, false,
                     :start + k * interval '5 hours'
                   FROM participants p CROSS JOIN generate_series(0, :per - 1) AS k
                   WHERE p.study_id = :study"""
            ),
            {"study": study_id, "start": START, "per": per},
        )
        for statement in OUTCOME_DATA if outcome_data else ():
            conn.execute(sa.text(statement))
        conn.execute(sa.text("ANALYZE"))
    engine.dispose()
    return study_id


def ceiling(url: str) -> tuple[int, float]:
    """Rows and seconds of COPY (SELECT …) TO STDOUT of the decision rows, in CSV."""
    plain = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    started = time.perf_counter()
    count = 0
    with psycopg.connect(plain) as conn, conn.cursor() as cur:
        query = (
            "COPY (SELECT d.*, p.code FROM decisions d JOIN participants p "
            "ON p.id = d.participant_id ORDER BY d.id) TO STDOUT (FORMAT csv, HEADER)"
        )
        with cur.copy(query) as copy:
            for chunk in copy:
                count += bytes(chunk).count(b"\n")
    return count - 1, time.perf_counter() - started


def export_once(url: str, study_id: str, fmt: str) -> None:
    """Run in a subprocess: export to /dev/null, print rows, seconds and peak RSS."""
    from app.audit.service import CLI_ACTOR
    from app.core.clock import SystemClock
    from app.core.db import create_db_engine, make_session_factory
    from app.export.columns import Filters
    from app.export.formats import ExportFormat
    from app.export.service import prepare_export, stream_export
    from app.studies.models import Study

    engine = create_db_engine(url)
    factory = make_session_factory(engine)
    with factory() as session:
        study = session.get_one(Study, uuid.UUID(study_id))
        prepared = prepare_export(
            session, SystemClock(), CLI_ACTOR, study, "decisions", ExportFormat(fmt), Filters()
        )
        session.commit()
        started = time.perf_counter()
        size = 0
        with open("/dev/null", "wb") as sink:
            for chunk in stream_export(session, study, prepared):
                size += len(chunk)
                sink.write(chunk)
        seconds = time.perf_counter() - started
        rows = session.scalar(sa.text("SELECT count(*) FROM decisions"))
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"rows": rows, "seconds": seconds, "bytes": size, "peak_mb": peak_mb}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--url", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    parser.add_argument(
        "--outcome-data",
        action="store_true",
        help="also notifications, engagement, EMA and wearable rows for the outcomes to find",
    )
    parser.add_argument(
        "--export-once", nargs=2, metavar=("STUDY", "FORMAT"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.export_once:
        export_once(args.url, *args.export_once)
        return

    from app.core.db import create_scratch_postgres

    scratch = create_scratch_postgres(args.url, "kairos_bench_export")
    url = scratch.url
    try:
        started = time.perf_counter()
        study_id = fill(url, args.rows, outcome_data=args.outcome_data)
        print(f"filled {args.rows:,} decision rows in {time.perf_counter() - started:.1f} s")
        count, copy_seconds = ceiling(url)
        print(
            f"ceiling  COPY TO STDOUT: {count:,} rows in {copy_seconds:.1f} s "
            f"= {count / copy_seconds:,.0f} rows/s"
        )
        for fmt in ("csv", "parquet"):
            out = subprocess.run(
                [sys.executable, __file__, "--url", url, "--export-once", study_id, fmt],
                check=True,
                capture_output=True,
                text=True,
            ).stdout
            result = json.loads(out.strip().splitlines()[-1])
            rate = result["rows"] / result["seconds"]
            print(
                f"kairos   {fmt:<7} {result['rows']:,} rows in {result['seconds']:.1f} s "
                f"= {rate:,.0f} rows/s ({rate / (count / copy_seconds):.0%} of the ceiling), "
                f"{result['bytes'] / 1e6:,.0f} MB, peak RSS {result['peak_mb']:.0f} MB"
            )
    finally:
        scratch.drop()


if __name__ == "__main__":
    main()
