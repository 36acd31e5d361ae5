"""The embedded default under load: the API and the in-process worker share one SQLite file.

Several threads post EMA batches through the app while the worker fires due decision points
and sends their pushes; no request may fail, no worker run may fail, and every accepted item
must be stored.
"""

import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from app.api.main import create_app
from app.core.clock import SimulatedClock
from app.core.config import Environment, Settings
from app.core.db import (
    DatabaseTimeouts,
    create_db_engine,
    is_database_unavailable,
    make_session_factory,
)
from app.core.migrations import upgrade_to_head
from app.core.sqlite_gate import write_gate
from app.ema.models import EmaResponse
from app.notifications.models import Notification
from app.notifications.providers import LoggingProvider
from tests.conftest import START, TEST_SECRET, World
from tests.support.protocols import protocol_yaml
from tests.support.scheduling import Enrolled, add_device, enrolled, worker

PHONES = 12
THREADS = 6
BATCHES_PER_THREAD = 10
ITEMS_PER_BATCH = 100
DAYS = 12


@pytest.fixture
def sqlite_world(tmp_path: Path) -> Iterator[World]:
    url = f"sqlite:///{tmp_path / 'load.db'}"
    engine = create_db_engine(url)
    upgrade_to_head(engine)
    settings = Settings(
        environment=Environment.test,
        database_url=url,
        secret_key=TEST_SECRET,
        auto_migrate=False,
        run_worker=False,
        export_dir=str(tmp_path / "exports"),
    )
    clock = SimulatedClock(START)
    app = create_app(settings, clock)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield World(client, make_session_factory(app.state.engine), clock, app.state.engine)
    engine.dispose()


def _batch(answered: list[int]) -> list[dict[str, object]]:
    return [
        {
            "client_id": uuid.uuid4().hex,
            "questionnaire_id": "daily",
            "questionnaire_version": 1,
            "answered_at": (START + timedelta(seconds=s)).isoformat(),
            "answers": {"pain": s % 11},
        }
        for s in answered
    ]


def test_ingestion_and_the_worker_at_once_see_no_locked_database(
    sqlite_world: World, caplog: pytest.LogCaptureFixture
) -> None:
    world = sqlite_world
    document = protocol_yaml(dp_times=["09:00", "13:00", "18:00"], ema_times=["20:00"])
    people: list[Enrolled] = [enrolled(world, document) for _ in range(PHONES)]
    for n, person in enumerate(people):
        add_device(world, person, push_token=f"tok-{n}")
    provider = LoggingProvider()
    load = worker(world, name="load", provider=provider)
    failures: list[str] = []
    accepted: list[str] = []
    lock = threading.Lock()
    ingest_done = threading.Event()

    def ingest(thread: int) -> None:
        for b in range(BATCHES_PER_THREAD):
            person = people[(thread * BATCHES_PER_THREAD + b) % PHONES]
            first = (thread * BATCHES_PER_THREAD + b) * ITEMS_PER_BATCH
            items = _batch(list(range(first, first + ITEMS_PER_BATCH)))
            response = world.client.post(
                "/v1/me/ema-responses", json={"items": items}, headers=person.headers
            )
            with lock:
                if response.status_code != 200:
                    failures.append(f"ingest {response.status_code}: {response.text[:300]}")
                    continue
                accepted.extend(
                    r["id"] for r in response.json()["items"] if r["status"] == "accepted"
                )

    def work() -> None:
        # Each due time of the schedule in turn (Berlin is UTC+1 in March), so that every
        # decision point fires on time and sends a push, while the phones post.
        day = 0
        while day < DAYS or not ingest_done.is_set():
            midnight = START.replace(hour=0) + timedelta(days=day + 1)
            for hour in (8, 12, 17, 19):
                world.clock.set(midnight + timedelta(hours=hour, minutes=1))
                try:
                    load.tick()
                    load.run_pending()
                except Exception as exc:
                    failures.append(f"worker: {exc!r}")
            day += 1

    caplog.set_level(logging.WARNING)
    threads = [threading.Thread(target=ingest, args=(t,)) for t in range(THREADS)]
    worker_thread = threading.Thread(target=work)
    worker_thread.start()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    ingest_done.set()
    worker_thread.join()

    locked = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert failures == []
    assert locked == []
    assert len(accepted) == THREADS * BATCHES_PER_THREAD * ITEMS_PER_BATCH
    with world.session_factory() as session:
        stored = set(map(str, session.scalars(sa.select(EmaResponse.id))))
        assert stored == set(accepted)
        assert session.scalar(sa.select(sa.func.count()).select_from(Notification))
    assert provider.sent


def _wait_until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 10
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_writers_take_turns_in_arrival_order_and_readers_do_not_wait(tmp_path: Path) -> None:
    engine = create_db_engine(f"sqlite:///{tmp_path / 'gate.db'}")
    gate = write_gate(engine)
    assert gate is not None
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE log (who TEXT)"))
    order: list[str] = []

    def write(who: str) -> None:
        with engine.begin() as conn:
            conn.execute(sa.text("INSERT INTO log VALUES (:who)"), {"who": who})
            order.append(who)

    try:
        holder = engine.connect()
        holder.execute(sa.text("INSERT INTO log VALUES ('first')"))  # holds the turn
        writers = []
        for n, who in enumerate(("second", "third", "fourth")):
            writers.append(threading.Thread(target=write, args=(who,)))
            writers[-1].start()
            _wait_until(lambda n=n: gate.waiting == n + 1)  # type: ignore[misc]
        # Readers never queue behind a writer (WAL).
        with engine.connect() as reader:
            assert reader.scalar(sa.text("SELECT count(*) FROM log")) == 0
        holder.commit()
        holder.close()
        for thread in writers:
            thread.join()
        assert order == ["second", "third", "fourth"]
        assert gate.waiting == 0
        with engine.connect() as conn:
            rows = conn.scalars(sa.text("SELECT who FROM log ORDER BY rowid")).all()
        assert rows == ["first", "second", "third", "fourth"]
        # A rolled back or abandoned transaction gives its turn back too.
        abandoned = engine.connect()
        abandoned.execute(sa.text("INSERT INTO log VALUES ('gone')"))
        abandoned.close()
        write("after")
        assert order[-1] == "after"
    finally:
        engine.dispose()


def test_a_writer_that_waits_past_the_timeout_gets_a_503_class_error(tmp_path: Path) -> None:
    engine = create_db_engine(
        f"sqlite:///{tmp_path / 'slow.db'}", timeouts=DatabaseTimeouts(sqlite_busy=0.2)
    )
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("CREATE TABLE t (x)"))
        holder = engine.connect()
        holder.execute(sa.text("INSERT INTO t VALUES (1)"))
        with engine.connect() as late, pytest.raises(sa.exc.OperationalError) as raised:
            late.execute(sa.text("INSERT INTO t VALUES (2)"))
        assert is_database_unavailable(raised.value)
        holder.rollback()
        holder.close()
    finally:
        engine.dispose()
