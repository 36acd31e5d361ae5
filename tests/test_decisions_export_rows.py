"""The decisions dataset's rows: the set-wise export against hand-computed outcome windows
and against the reference (ORM decisions joined by ``records``, outcomes computed per
batch as the history API does) on varied data, several protocol versions and small pages."""

import csv
import io
import json
import random
import threading
import types
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa
import yaml
from sqlalchemy.orm import Session

from app.core.ids import new_id
from app.decision_rules.history import records
from app.decision_rules.models import Decision
from app.ema.models import EmaAnswer, EmaResponse
from app.engagement.models import EngagementEvent
from app.export import decisions as decisions_module
from app.export.columns import Column, ColumnType, Filters, Row
from app.export.decisions import (
    OUTCOME_PREFIX,
    TAILORING_PREFIX,
    decision_columns,
    decision_rows,
)
from app.export.formats import write_csv, write_ndjson, write_parquet
from app.notifications.models import Notification, NotificationKind
from app.participants.models import Participant
from app.protocols.interventions import Category
from app.protocols.models import ProtocolVersion
from app.protocols.store import load_protocol
from app.sensing.models import WearableSummary
from app.studies.models import Study
from tests.conftest import World
from tests.support.decisions import Trial, example_document

T0 = datetime(2026, 3, 10, 8, 0, tzinfo=UTC)
US = timedelta(microseconds=1)


def _decision(participant: uuid.UUID, study: uuid.UUID, at: datetime, **fields: Any) -> Decision:
    values: dict[str, Any] = {
        "participant_id": participant,
        "study_id": study,
        "decision_point_id": "afternoon",
        "decision_index": 0,
        "planned_at": at,
        "decided_at": at,
        "local_time": at.isoformat(),
        "timezone": "Europe/Berlin",
        "protocol_version": 1,
        "study_day": 1,
        "available": True,
        "tailoring": {},
        "probabilities": {"pain_acceptance": 0.6, "nothing": 0.4},
        "randomized": True,
        "seed": 1,
        "draw": 0.5,
        "option_id": "pain_acceptance",
        "probability": 0.6,
        "created_at": at,
        **fields,
    }
    return Decision(id=new_id(), **values)


def _answer(
    session: Session,
    participant: uuid.UUID,
    study: uuid.UUID,
    at: datetime,
    value: Any,
    *,
    numeric: float | None,
    item: str = "interference",
    questionnaire: str = "evening",
) -> None:
    """An answer in a response of its own (the models declare no relationship: flush the
    response first)."""
    response = EmaResponse(
        id=new_id(),
        participant_id=participant,
        study_id=study,
        client_id=uuid.uuid4().hex,
        questionnaire_id=questionnaire,
        questionnaire_version=1,
        protocol_version=1,
        answered_at=at,
        utc_offset_minutes=60,
        received_at=at,
    )
    answer = EmaAnswer(
        id=new_id(),
        response_id=response.id,
        participant_id=participant,
        questionnaire_id=questionnaire,
        item_id=item,
        answered_at=at,
        value=value,
        numeric_value=numeric,
    )
    session.add(response)
    session.flush()
    session.add(answer)


def _steps(
    participant: uuid.UUID, study: uuid.UUID, start: datetime, end: datetime, value: float
) -> WearableSummary:
    return WearableSummary(
        participant_id=participant,
        study_id=study,
        metric="steps",
        unit="count",
        start_at=start,
        end_at=end,
        value=value,
        received_at=end,
        updated_at=end,
    )


def _event(
    participant: uuid.UUID,
    study: uuid.UUID,
    kind: str,
    at: datetime,
    notification: uuid.UUID | None = None,
) -> EngagementEvent:
    return EngagementEvent(
        participant_id=participant,
        study_id=study,
        client_id=uuid.uuid4().hex,
        kind=kind,
        notification_id=notification,
        occurred_at=at,
        received_at=at,
    )


def _notification(participant: uuid.UUID, study: uuid.UUID, decision: Decision) -> Notification:
    return Notification(
        id=new_id(),
        participant_id=participant,
        study_id=study,
        kind=NotificationKind.intervention,
        decision_id=decision.id,
        option_id=decision.option_id,
        title="t",
        body="b",
        data={},
        created_at=decision.decided_at,
        send_at=decision.decided_at,
        status="sent",
        sent_at=decision.decided_at + timedelta(seconds=3),
    )


def _rows(world: World, study_id: str, filters: Filters = Filters()) -> list[dict[str, Any]]:
    with world.session_factory() as session:
        study = session.get_one(Study, uuid.UUID(study_id))
        columns = decision_columns(session, study, filters)
        names = [c.name for c in columns]
        return [
            dict(zip(names, row, strict=True))
            for row in decision_rows(session, study, filters, columns, world.clock.now())
        ]


@pytest.mark.parametrize("second", [0, 59])
def test_outcome_windows_at_their_edges(world: World, second: int) -> None:
    """EMA: after the decision, up to the end of the window inclusive, the first answer;
    wearable: prorated by overlap; engagement: from the decision to the end inclusive.
    Decision times just under a whole second check that windows keep their microseconds
    (SQLite's date functions round to milliseconds)."""
    trial = Trial(world)
    study = uuid.UUID(trial.study_id)
    pid = trial.participant()
    at = T0.replace(second=second, microsecond=999_999 if second else 0)
    four_h, one_h, two_h = timedelta(minutes=240), timedelta(minutes=60), timedelta(minutes=120)
    with world.session_factory() as session:
        exact, early, late, open_ = (
            _decision(pid, study, at + timedelta(days=day), option_id="activity_pacing")
            for day in range(4)
        )
        session.add_all([exact, early, late, open_])
        session.flush()
        # exact: an answer at the decision time does not count; at the end of the window
        # it does. Steps: half of a period inside the window, one period touching its end.
        _answer(session, pid, study, exact.decided_at, 1.0, numeric=1.0)
        _answer(session, pid, study, exact.decided_at + four_h, 7.0, numeric=7.0)
        session.add(_steps(pid, study, at - timedelta(minutes=30), at + timedelta(minutes=30), 100))
        session.add(_steps(pid, study, at + one_h, at + 2 * one_h, 5000))
        session.add(_event(pid, study, "exercise_completed", exact.decided_at))
        # early: the first of two answers in the window, a string answer.
        _answer(
            session, pid, study, early.decided_at + US, "low", numeric=None, item="interference"
        )
        _answer(session, pid, study, early.decided_at + 2 * US, 3.0, numeric=3.0)
        session.add(_event(pid, study, "exercise_completed", early.decided_at + two_h))
        # late: everything one microsecond too late.
        _answer(session, pid, study, late.decided_at + four_h + US, 2.0, numeric=2.0)
        session.add(_event(pid, study, "exercise_completed", late.decided_at + two_h + US))
        day_start = late.decided_at + one_h
        session.add(_steps(pid, study, day_start, day_start + one_h, 80))
        session.commit()
        ids = [str(d.id) for d in (exact, early, late, open_)]
    # The last decision's windows are still open (by one microsecond for the shortest).
    world.clock.set(open_.decided_at + one_h - US)
    rows = {r["decision_id"]: r for r in _rows(world, trial.study_id)}
    got = [
        (
            rows[i]["outcome_next_interference"],
            rows[i]["outcome_steps_60m"],
            rows[i]["outcome_exercise_done"],
        )
        for i in ids
    ]
    assert got == [(7.0, 50.0, 1.0), ("low", None, 1.0), (None, None, 0.0), (None, None, None)]


def _reference_rows(
    session: Session, study: Study, filters: Filters, columns: list[Column], now: datetime
) -> Iterator[Row]:
    """The decisions dataset as it was computed before rows were read as plain tuples:
    ORM decisions, joined by ``records`` (the history API's join, outcomes included)."""
    protocols = {
        row.version: load_protocol(row)
        for row in session.scalars(
            sa.select(ProtocolVersion).where(ProtocolVersion.study_id == study.id)
        )
    }
    none_options = {
        version: {o.id for o in p.intervention_options if o.category == Category.none}
        for version, p in protocols.items()
    }
    names = [c.name for c in columns[len(decisions_module.FIXED_COLUMNS) :]]
    stmt = (
        sa.select(Decision, Participant.code)
        .join(Participant, Participant.id == Decision.participant_id)
        .where(Decision.study_id == study.id)
        .order_by(Decision.id)
    )
    if filters.participant_ids:
        stmt = stmt.where(Decision.participant_id.in_(filters.participant_ids))
    if filters.start is not None:
        stmt = stmt.where(Decision.decided_at >= filters.start)
    if filters.end is not None:
        stmt = stmt.where(Decision.decided_at < filters.end)
    if filters.protocol_version is not None:
        stmt = stmt.where(Decision.protocol_version == filters.protocol_version)
    page = [(decision, code) for decision, code in session.execute(stmt)]
    codes = {decision.id: code for decision, code in page}
    for record in records(session, [d for d, _ in page], now=now):
        d = record.decision
        nones = none_options.get(d.protocol_version or 0, set())
        kinds = {e.kind for e in record.engagement}
        extra = {
            **{TAILORING_PREFIX + k: v for k, v in d.tailoring.items()},
            **{
                OUTCOME_PREFIX + k: float(v) if isinstance(v, bool) else v
                for k, v in record.outcomes.items()
            },
        }
        sent = record.notification_id is not None
        p_treated = (
            float(sum(p for o, p in d.probabilities.items() if o not in nones))
            if d.available and d.probabilities
            else None
        )
        notification = record.notification_id
        yield (
            # The dataset gives ids as text.
            str(d.id),
            str(d.participant_id),
            codes[d.id],
            d.decision_index,
            d.decision_point_id,
            d.planned_at,
            d.decided_at,
            d.local_time,
            d.timezone,
            d.protocol_version,
            d.study_day,
            d.stage,
            d.track,
            d.available,
            d.unavailable_reason,
            d.rule_id,
            d.randomized,
            json.dumps(d.probabilities, sort_keys=True),
            p_treated,
            d.seed,
            d.draw,
            d.option_id,
            int(d.option_id is not None and d.option_id not in nones),
            d.probability,
            d.fallback,
            d.error,
            d.note,
            d.pai_recommendation,
            None if notification is None else str(notification),
            record.delivery_status,
            record.sent_at,
            "prompt_opened" in kinds if sent else None,
            "exercise_completed" in kinds if sent else None,
            None if d.learning is None else json.dumps(d.learning, sort_keys=True),
            None if d.dose is None else json.dumps(d.dose, sort_keys=True),
            d.phase,
            d.burden_factor,
            *(extra.get(name) for name in names),
        )


def _second_version(trial: Trial) -> None:
    """Version 2: other outcome windows (a mean, one questionnaire, options), an extra
    outcome and a boolean and a string tailoring variable."""
    document = example_document()
    document["tailoring_variables"] += [
        {"name": "trauma", "type": "boolean", "source": "attribute", "attribute": "trauma_history"},
        {
            "name": "phenotype",
            "type": "string",
            "source": "attribute",
            "attribute": "pain_phenotype",
        },
    ]
    document["proximal_outcomes"] = [
        {
            "name": "next_interference",
            "source": "ema",
            "item": "evening.interference",
            "window_minutes_after": 90,
        },
        {
            "name": "steps_60m",
            "source": "wearable",
            "metric": "steps",
            "aggregate": "mean",
            "window_minutes_after": 45,
            "options": ["pain_acceptance"],
        },
        {
            "name": "opened_soon",
            "source": "engagement",
            "event": "prompt_opened",
            "window_minutes_after": 30,
        },
    ]
    response = trial.world.client.post(
        f"/v1/studies/{trial.study_id}/protocols",
        content=yaml.safe_dump(document),
        headers={**trial.admin, "Content-Type": "application/yaml"},
    )
    assert response.status_code == 201, response.text


_ODD_FLOATS = [0.1 + 0.2, 1e-05, 1e16, 2.5, -0.0, 123456789.125, 1 / 3]
_TEXTS = [None, "", "plain", 'with "quotes", commas', "line\nbreak", "é ünïcode ✓"]


def _tailoring(rng: random.Random) -> dict[str, Any]:
    names = [
        "interference_today",
        "acceptance_today",
        "steps_3h",
        "days_enrolled",
        "pain_baseline",
        "trauma",
        "phenotype",
        "not_declared",
    ]
    values: list[Any] = [None, True, False, 0, 7, -1, "text", *_ODD_FLOATS]
    return {name: rng.choice(values) for name in names if rng.random() < 0.8}


def _fill(world: World, trial: Trial, rng: random.Random) -> None:
    study = uuid.UUID(trial.study_id)
    people = [trial.participant() for _ in range(3)]
    with world.session_factory() as session:
        for pid in people:
            for i in range(14):
                at = T0 + timedelta(hours=5 * i, microseconds=rng.choice([0, 999_999, 123_456]))
                option = rng.choice([None, "nothing", "pain_acceptance", "activity_pacing"])
                probabilities = rng.choice(
                    [
                        {},
                        {"pain_acceptance": 0.6, "nothing": 0.4},
                        {"nothing": 1.0},
                        {"activity_pacing": 0.1, "pain_acceptance": 0.2, "nothing": 0.7},
                    ]
                )
                decision = _decision(
                    pid,
                    study,
                    at,
                    decision_index=rng.choice([None, i]),
                    protocol_version=rng.choice([1, 2, 2, None]),
                    available=rng.random() < 0.8,
                    unavailable_reason=rng.choice(_TEXTS),
                    stage=rng.choice([None, "stage_1"]),
                    tailoring=_tailoring(rng),
                    probabilities=probabilities,
                    option_id=option,
                    probability=rng.choice([None, 0.4, 0.1 + 0.2]),
                    seed=rng.choice([None, 2**62 + i]),
                    draw=rng.random(),
                    fallback=rng.random() < 0.2,
                    error=rng.choice(_TEXTS),
                    note=rng.choice(_TEXTS),
                    pai_recommendation=rng.choice([None, "pain_acceptance"]),
                )
                session.add(decision)
                notification = None
                if option not in (None, "nothing") and rng.random() < 0.7:
                    notification = _notification(pid, study, decision)
                    notification.status = rng.choice(["pending", "sent", "failed"])
                    session.add(notification)
                session.flush()
                for _ in range(rng.randint(0, 3)):
                    offset = rng.choice([0, 1, 60, 90, 240, 241]) * timedelta(minutes=1)
                    when = at + offset + rng.choice([-US, 0 * US, US])
                    value: Any = rng.choice([2.0, 5.5, "mild", True, ["a", "b"], None])
                    numeric = value if isinstance(value, float) else None
                    questionnaire = rng.choice(["evening", "morning"])
                    _answer(
                        session,
                        pid,
                        study,
                        when,
                        value,
                        numeric=numeric,
                        questionnaire=questionnaire,
                    )
                for k in range(rng.randint(0, 3)):
                    start = at + timedelta(minutes=rng.choice([-60, -30, 0, 15, 45, 60]) + k)
                    length = timedelta(minutes=rng.choice([0, 30, 60]))
                    session.add(
                        _steps(pid, study, start, start + length, rng.choice([0, 120, 333]))
                    )
                for _ in range(rng.randint(0, 3)):
                    offset = rng.choice([0, 29, 30, 31, 119, 120, 121]) * timedelta(minutes=1)
                    kind = rng.choice(["prompt_opened", "exercise_completed"])
                    linked = notification.id if notification and rng.random() < 0.7 else None
                    when = at + offset + rng.choice([-US, 0 * US, US])
                    session.add(_event(pid, study, kind, when, linked))
                session.flush()
        session.commit()


def _texts(columns: list[Column], rows: list[Row]) -> tuple[bytes, bytes, bytes | str]:
    csv_bytes = b"".join(write_csv(columns, rows, {}))
    ndjson_bytes = b"".join(write_ndjson(columns, rows, {}))
    try:
        parquet: bytes | str = b"".join(write_parquet(columns, rows, {}))
    except ValueError as error:  # text in a number column (the test data has some)
        parquet = str(error)
    return csv_bytes, ndjson_bytes, parquet


@pytest.mark.parametrize("seed", [1, 2])
def test_decision_rows_agree_with_the_reference(
    world: World, monkeypatch: pytest.MonkeyPatch, seed: int
) -> None:
    rng = random.Random(seed)  # noqa: S311 (test data)
    trial = Trial(world)
    _second_version(trial)
    _fill(world, trial, rng)
    # Some windows still open.
    now = T0 + timedelta(hours=5 * 13, minutes=rng.choice([30, 100]))
    monkeypatch.setattr(decisions_module, "PAGE", 5)
    with world.session_factory() as session:
        study = session.get_one(Study, uuid.UUID(trial.study_id))
        some = session.scalars(sa.select(Participant.id).where(Participant.study_id == study.id))
        selections = [
            Filters(),
            Filters(protocol_version=2),
            Filters(participant_ids=tuple(some)[:2], start=T0 + timedelta(hours=9), end=now),
        ]
        for filters in selections:
            columns = decision_columns(session, study, filters)
            expected = list(_reference_rows(session, study, filters, columns, now))
            got = list(decision_rows(session, study, filters, columns, now))
            assert len(got) == len(expected) > 0
            for mine, theirs in zip(got, expected, strict=True):
                assert tuple(mine) == tuple(theirs)
            assert _texts(columns, got) == _texts(columns, expected)
            outcomes = [c.name for c in columns if c.name.startswith(OUTCOME_PREFIX)]
            assert len(outcomes) == 4 if filters.protocol_version is None else 3
            # The data exercise the outcomes: values, misses and open windows.
            seen = {type(r[columns.index(c)]) for r in got for c in columns if c.name in outcomes}
            assert {float, type(None)} <= seen


def test_the_csv_of_the_decisions_dataset_reads_back(world: World) -> None:
    trial = Trial(world)
    _fill(world, trial, random.Random(3))  # noqa: S311
    world.clock.set(T0 + timedelta(days=5))
    rows = _rows(world, trial.study_id)
    with world.session_factory() as session:
        study = session.get_one(Study, uuid.UUID(trial.study_id))
        columns = decision_columns(session, study, Filters())
    text = b"".join(write_csv(columns, [list(r.values()) for r in rows], {})).decode()
    parsed = list(csv.DictReader(io.StringIO(text)))
    assert [r["decision_id"] for r in parsed] == [r["decision_id"] for r in rows]
    assert all(r["available"] in ("true", "false") for r in parsed)
    assert all(r["decided_at"].endswith("Z") for r in parsed)


def _reference_cell(value: Any, kind: ColumnType) -> str:
    """A CSV cell as the export has always written it."""
    if value is None:
        return ""
    if kind is ColumnType.timestamp:
        return str(value.isoformat().replace("+00:00", "Z"))
    if kind is ColumnType.boolean:
        return "true" if value else "false"
    return str(value)


def test_csv_cells_of_every_type() -> None:
    columns = [Column(f"c_{kind}", kind, "") for kind in ColumnType]
    cases: list[list[Any]] = [
        [None] * len(columns),
        ["text", 3, 0.1 + 0.2, True, T0, '{"a": 1}'],
        ['quote " comma , newline \n', True, 1e16, False, T0 + US, "[]"],
        [uuid.UUID(int=7), False, 1e-05, 0, T0.replace(microsecond=5), None],
        ["é ✓", -1, True, 1, T0, ""],
        [True, 2**63, 7, "yes", T0, 1.5],
    ]
    expected = io.StringIO()
    writer = csv.writer(expected, lineterminator="\n")
    writer.writerow([c.name for c in columns])
    writer.writerows(
        [_reference_cell(v, c.type) for v, c in zip(row, columns, strict=True)] for row in cases
    )
    assert b"".join(write_csv(columns, cases, {})).decode() == expected.getvalue()
    with pytest.raises(ValueError, match="values for 6 columns"):
        b"".join(write_csv(columns, [[1, 2]], {}))


def test_timestamps_are_utc_whatever_the_session_time_zone(world: World) -> None:
    trial = Trial(world)
    study_id = uuid.UUID(trial.study_id)
    pid = trial.participant()
    at = T0 + timedelta(microseconds=250)
    with world.session_factory() as session:
        decision = _decision(pid, study_id, at, option_id="pain_acceptance")
        session.add(decision)
        session.flush()
        session.add(_notification(pid, study_id, decision))
        session.commit()
    postgres = world.engine.dialect.name == "postgresql"
    # A session of the factory, and one bound to a connection (read without a second one).
    with world.session_factory() as session:
        _check_utc(session, study_id, at, postgres=postgres)
    with world.engine.connect() as connection, Session(bind=connection) as session:
        _check_utc(session, study_id, at, postgres=postgres)


def _check_utc(session: Session, study_id: uuid.UUID, at: datetime, *, postgres: bool) -> None:
    if postgres:
        session.execute(sa.text("SET TIME ZONE 'America/New_York'"))
    study = session.get_one(Study, study_id)
    columns = decision_columns(session, study, Filters())
    [row] = decision_rows(session, study, Filters(), columns, at)
    named = dict(zip([c.name for c in columns], row, strict=True))
    for name in ("planned_at", "decided_at", "sent_at"):
        assert named[name].utcoffset() == timedelta(0)
    assert named["decided_at"] == at
    assert named["sent_at"] == at + timedelta(seconds=3)
    text = b"".join(write_csv(columns, [row], {})).decode()
    assert "2026-03-10T08:00:00.000250Z" in text
    if postgres:  # the session's own zone is as it was
        zone = session.scalar(sa.text("SELECT current_setting('TimeZone')"))
        assert zone == "America/New_York"


def test_parquet_values_of_every_type() -> None:
    """Strings and JSON as str(), numbers as float, the rest as given; None is null."""
    columns = [Column(f"c_{kind}", kind, "") for kind in ColumnType]
    cases: list[list[Any]] = [
        [None] * len(columns),
        ["text", 3, 0.1 + 0.2, True, T0, '{"a": 1}'],
        [uuid.UUID(int=7), -1, 7, False, T0 + US, {"b": 2}],
        [NotificationKind.reminder, 2**62, True, None, None, ["x"]],
    ]
    table = pq.read_table(io.BytesIO(b"".join(write_parquet(columns, cases, {}))))
    assert table.to_pylist() == [
        {c.name: None for c in columns},
        dict(zip(table.column_names, ["text", 3, 0.1 + 0.2, True, T0, '{"a": 1}'], strict=True)),
        dict(
            zip(
                table.column_names,
                [str(uuid.UUID(int=7)), -1, 7.0, False, T0 + US, "{'b': 2}"],
                strict=True,
            )
        ),
        dict(zip(table.column_names, ["reminder", 2**62, 1.0, None, None, "['x']"], strict=True)),
    ]


def _some_decisions(world: World, count: int) -> str:
    trial = Trial(world)
    study = uuid.UUID(trial.study_id)
    pid = trial.participant()
    with world.session_factory() as session:
        session.add_all(
            _decision(pid, study, T0 + timedelta(hours=i), decision_index=i) for i in range(count)
        )
        session.commit()
    return str(trial.study_id)


def _readers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "export-read-ahead"]


def test_closing_the_rows_early_stops_the_reader(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    study_id = _some_decisions(world, 9)
    monkeypatch.setattr(decisions_module, "PAGE", 2)
    with world.session_factory() as session:
        study = session.get_one(Study, uuid.UUID(study_id))
        columns = decision_columns(session, study, Filters())
        rows = decision_rows(session, study, Filters(), columns, T0)
        assert isinstance(rows, types.GeneratorType)
        assert len([next(rows) for _ in range(3)]) == 3
        rows.close()
        assert _readers() == []
        # The session is still usable, and a full read gives every row once.
        all_rows = list(decision_rows(session, study, Filters(), columns, T0))
        assert sorted(r[3] for r in all_rows) == list(range(9))
        assert _readers() == []


def test_errors_while_reading_reach_the_caller(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    study_id = _some_decisions(world, 5)
    monkeypatch.setattr(decisions_module, "PAGE", 2)

    def broken(*_args: Any) -> list[Any]:
        raise RuntimeError("outcomes failed")

    monkeypatch.setattr(decisions_module, "page_outcomes", broken)
    with world.session_factory() as session:
        study = session.get_one(Study, uuid.UUID(study_id))
        columns = decision_columns(session, study, Filters())
        with pytest.raises(RuntimeError, match="outcomes failed"):
            list(decision_rows(session, study, Filters(), columns, T0))
    assert _readers() == []


def test_rows_are_read_in_the_sessions_snapshot(world: World) -> None:
    """Rows committed by others after the session's transaction took its snapshot are not
    exported (PostgreSQL, repeatable read); on SQLite there is one connection."""
    study_id = _some_decisions(world, 3)
    if world.engine.dialect.name != "postgresql":
        pytest.skip("snapshots are shared between connections on PostgreSQL")
    with world.session_factory() as session:
        session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
        study = session.get_one(Study, uuid.UUID(study_id))  # the snapshot is taken here
        _some_decisions_for(world, study.id)
        columns = decision_columns(session, study, Filters())
        assert len(list(decision_rows(session, study, Filters(), columns, T0))) == 3
    with world.session_factory() as session:
        study = session.get_one(Study, uuid.UUID(study_id))
        assert len(list(decision_rows(session, study, Filters(), columns, T0))) == 4


def _some_decisions_for(world: World, study: uuid.UUID) -> None:
    with world.session_factory() as session:
        pid = session.scalars(sa.select(Participant.id).where(Participant.study_id == study)).one()
        session.add(_decision(pid, study, T0 + timedelta(days=3)))
        session.commit()
