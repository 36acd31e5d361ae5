"""Request ids and JSON log lines, through the real app."""

import io
import json
import logging
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.api.main import create_app
from app.core.clock import SimulatedClock
from app.core.config import Settings
from app.observability.logs import KairosJsonFormatter, RequestIdFilter
from tests.conftest import World

route_logger = logging.getLogger("app.test_route")


def _with_test_routes(app: FastAPI) -> FastAPI:
    def noisy() -> dict[str, str]:
        route_logger.info("handling %s", "noisy", extra={"items": 3})
        return {"ok": "yes"}

    def broken() -> None:
        route_logger.warning("about to fail")
        raise RuntimeError("boom")

    # Plain `def` routes run in the thread pool: the request id must reach them.
    app.add_api_route("/test/noisy", noisy, methods=["GET"])
    app.add_api_route("/test/broken", broken, methods=["GET"])
    return app


@pytest.fixture
def lines() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(KairosJsonFormatter())
    handler.addFilter(RequestIdFilter())
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    yield stream
    root.removeHandler(handler)
    root.setLevel(old_level)


@pytest.fixture
def app_client(engine: Any, settings: Settings, clock: SimulatedClock) -> Iterator[TestClient]:
    app = _with_test_routes(create_app(settings, clock))
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


def _records(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line]


def test_a_sane_request_id_is_kept_returned_and_in_every_line(
    app_client: TestClient, lines: io.StringIO
) -> None:
    response = app_client.get("/test/noisy", headers={"X-Request-ID": "req-42.a:b_c"})
    assert response.status_code == 200
    assert response.headers["X-Request-ID"] == "req-42.a:b_c"
    (record,) = [r for r in _records(lines) if r["logger"] == "app.test_route"]
    assert record["request_id"] == "req-42.a:b_c"
    assert record["message"] == "handling noisy"
    assert record["level"] == "INFO"
    assert record["items"] == 3
    assert record["time"].endswith("+00:00")
    assert "exc_info" not in record


@pytest.mark.parametrize(
    "incoming", [None, b"", b"has spaces", b"x" * 129, "naïve".encode(), b"a\tb", b"<script>"]
)
def test_a_missing_or_insane_request_id_is_replaced(
    app_client: TestClient, lines: io.StringIO, incoming: bytes | None
) -> None:
    headers = {} if incoming is None else {"X-Request-ID": incoming}
    response = app_client.get("/test/noisy", headers=headers)
    request_id = response.headers["X-Request-ID"]
    assert request_id.encode() != incoming
    assert len(request_id) == 32
    int(request_id, 16)
    (record,) = [r for r in _records(lines) if r["logger"] == "app.test_route"]
    assert record["request_id"] == request_id


def test_each_request_gets_its_own_id(app_client: TestClient, lines: io.StringIO) -> None:
    ids = {app_client.get("/test/noisy").headers["X-Request-ID"] for _ in range(3)}
    assert len(ids) == 3
    assert {r["request_id"] for r in _records(lines) if r["logger"] == "app.test_route"} == ids


def test_an_unexpected_error_logs_its_traceback_with_the_request_id(
    app_client: TestClient, lines: io.StringIO
) -> None:
    response = app_client.get("/test/broken", headers={"X-Request-ID": "trace-me"})
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["X-Request-ID"] == "trace-me"
    records = _records(lines)
    warning = next(r for r in records if r["logger"] == "app.test_route")
    assert warning["request_id"] == "trace-me"
    error = next(r for r in records if r["logger"] == "app.api.problems")
    assert error["level"] == "ERROR"
    assert error["request_id"] == "trace-me"
    assert "RuntimeError: boom" in error["exc_info"]
    assert "Traceback" in error["exc_info"]


def test_problems_and_errors_of_the_api_carry_the_request_id(
    world: World, lines: io.StringIO
) -> None:
    response = world.client.post("/v1/enroll", json={}, headers={"X-Request-ID": "enroll-1"})
    assert response.status_code == 422
    assert response.headers["X-Request-ID"] == "enroll-1"


def test_json_log_format_writes_one_object_per_line_outside_requests() -> None:
    script = (
        "import logging\n"
        "from app.observability.logs import configure_logging\n"
        "configure_logging('info', 'json')\n"
        "logging.getLogger('app.worker.runner').info('tick %d', 7)\n"
        "logging.getLogger('uvicorn.error').info('Started server process', "
        "extra={'color_message': 'x'})\n"
        "try:\n"
        "    1 / 0\n"
        "except ZeroDivisionError:\n"
        "    logging.getLogger('app').exception('failed')\n"
        "logging.getLogger('app').debug('not at info')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    records = [json.loads(line) for line in done.stderr.splitlines()]
    assert [r["message"] for r in records] == ["tick 7", "Started server process", "failed"]
    assert all(r["request_id"] is None for r in records)
    assert records[0]["logger"] == "app.worker.runner"
    assert "color_message" not in records[1]
    assert "ZeroDivisionError" in records[2]["exc_info"]
    assert set(records[0]) == {"time", "level", "logger", "message", "request_id"}


def test_text_log_format_is_one_readable_line() -> None:
    script = (
        "import logging\n"
        "from app.observability.logs import configure_logging\n"
        "configure_logging('info', 'text')\n"
        "logging.getLogger('app').info('hello')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    (line,) = done.stderr.splitlines()
    assert line.endswith("INFO app [None] hello")


def test_log_format_setting_is_validated() -> None:
    assert Settings(_env_file=None, log_format="json").log_format == "json"
    with pytest.raises(ValueError, match="log_format"):
        Settings(_env_file=None, log_format="xml")


@pytest.mark.parametrize(("level", "shown"), [("info", False), ("debug", True)])
def test_apscheduler_says_nothing_per_job_run_at_info(level: str, shown: bool) -> None:
    # A real APScheduler running a job, as the worker's tick: at info its "Running job" and
    # "executed successfully" lines (two per run, every few seconds) stay out of the log.
    script = (
        "import logging, threading\n"
        "from apscheduler.schedulers.background import BackgroundScheduler\n"
        "from app.observability.logs import configure_logging\n"
        f"configure_logging('{level}', 'json')\n"
        "ran = threading.Event()\n"
        "def tick():\n"
        "    logging.getLogger('app.worker.runner').info('ticked')\n"
        "    ran.set()\n"
        "scheduler = BackgroundScheduler(timezone='UTC')\n"
        # An interval job, as the worker's: a one-off job races its own removal with the
        # shutdown below (APScheduler's JobLookupError in its thread).
        "from datetime import UTC, datetime\n"
        "scheduler.add_job(tick, 'interval', seconds=60, next_run_time=datetime.now(UTC))\n"
        "scheduler.start()\n"
        "assert ran.wait(30)\n"
        "scheduler.shutdown(wait=True)\n"
        "logging.getLogger('apscheduler.scheduler').warning('still warns')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    records = [json.loads(line) for line in done.stderr.splitlines()]
    messages = [r["message"] for r in records]
    assert "ticked" in messages
    assert "still warns" in messages
    job_lines = [m for m in messages if m.startswith("Running job") or "executed" in m]
    assert bool(job_lines) is shown, messages
