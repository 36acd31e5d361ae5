"""Generated requests over the whole OpenAPI document must find nothing.

Schemathesis reads the real app's /openapi.json and, for every operation, generates
requests that fit the schema (positive), requests that break it (negative) and the
documented examples, once with a participant token and once with an admin key, against
the conftest's database (SQLite, or PostgreSQL with KAIROS_DATABASE_URL). Every response
must be no server error, with a documented status code, content type, headers and body.

The run is reproducible (derandomized, a fixed number of examples per operation) and
takes about a minute per database; set KAIROS_SCHEMATHESIS_EXAMPLES to run more.
Findings are collected rather than raised at the first, so one run reports all of them,
and the totals (operations, cases, findings) are printed for the record.
"""

import itertools
import os
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import hypothesis
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Err
from schemathesis.generation import GenerationMode
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from app.staff.models import Role
from tests.conftest import World, bearer, is_postgres_run
from tests.support.ingest import evening, morning, pain_study, phone

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
EXAMPLES = int(os.environ.get("KAIROS_SCHEMATHESIS_EXAMPLES", "12"))
# Schemathesis's coverage phase: deterministic boundary values (a maximum and one past it,
# empty and over-long strings, wrong types …), at most this many per operation.
COVERAGE_CASES = int(os.environ.get("KAIROS_SCHEMATHESIS_COVERAGE", "40"))
MODES = [GenerationMode.POSITIVE, GenerationMode.NEGATIVE]


@dataclass
class Run:
    """What one caller's run did and found."""

    caller: str
    operations: int = 0
    cases: Counter[str] = field(default_factory=Counter)
    findings: list[str] = field(default_factory=list)
    statuses: Counter[str] = field(default_factory=Counter)

    def summary(self) -> str:
        database = "postgresql" if is_postgres_run() else "sqlite"
        return (
            f"schemathesis as {self.caller} on {database}: {self.operations} operations, "
            f"{sum(self.cases.values())} cases, {len(self.findings)} findings; responses: "
            + ", ".join(f"{n} {kind}" for kind, n in sorted(self.statuses.items()))
        )


@dataclass
class Fixtures:
    """Real resources, so that generated requests reach them and do real work."""

    headers: dict[str, str]
    path_parameters: dict[str, Any]


def _data(world: World, caller: str) -> Fixtures:
    study_id = pain_study(world)
    app = phone(world, study_id)
    now = world.clock.now()
    app.post(
        "ema-responses", [morning(now - timedelta(hours=2)), evening(now - timedelta(hours=1))]
    )
    app.post(
        "wearables",
        [
            {
                "metric": "steps",
                "unit": "count",
                "start": (now - timedelta(hours=3)).isoformat(),
                "duration_minutes": 60,
                "value": 812,
            }
        ],
    )
    device = world.client.post(
        "/v1/me/devices",
        json={"push_token": "schemathesis-device", "platform": "android"},
        headers=app.headers,
    ).json()
    admin_key = world.staff_key(Role.admin)
    admin = bearer(admin_key)
    job = world.client.post(
        f"/v1/studies/{study_id}/export-jobs", json={"dataset": "decisions"}, headers=admin
    ).json()
    # A key the run may revoke: never the one it authenticates with.
    spare = world.client.post(
        "/v1/api-keys", json={"name": "spare", "role": "researcher"}, headers=admin
    ).json()
    path_parameters = {
        "study_id": study_id,
        "participant_id": app.id,
        "device_id": device["id"],
        "version": 1,
        "dataset": "ema_answers",
        "job_id": job["id"],
        "key_id": spare["id"],
        "alert_id": str(uuid.uuid4()),
        "flag_id": str(uuid.uuid4()),
    }
    headers = app.headers if caller == "participant" else admin
    return Fixtures(headers, path_parameters)


def _strategies(operation: Any, fixtures: Fixtures) -> Iterator[Any]:
    for mode in MODES:
        yield operation.as_strategy(mode)
    names = {p.name for p in operation.path_parameters}
    if names:
        known = {n: v for n, v in fixtures.path_parameters.items() if n in names}
        yield operation.as_strategy(GenerationMode.POSITIVE, path_parameters=known)
    yield from operation.schema.get_strategies_from_examples(operation)


def _call(case: Any, fixtures: Fixtures, run: Run) -> None:
    label = case.operation.label
    run.cases[label] += 1
    try:
        response = case.call_and_validate(headers=fixtures.headers, checks=CHECKS)
        run.statuses[f"{response.status_code // 100}xx"] += 1
    except (Exception, BaseExceptionGroup) as exc:  # every finding is collected, not raised
        run.findings.append(f"{label}: {exc}")


def _coverage(schema: Any, operation: Any, fixtures: Fixtures, run: Run) -> None:
    config = schema.config.generation_for(operation=operation, phase="coverage")
    cases = schema.iter_coverage_cases(operation, generation_modes=MODES, generation_config=config)
    for case in itertools.islice(cases, COVERAGE_CASES):
        _call(case, fixtures, run)


def _exercise(operation: Any, strategies: list[Any], fixtures: Fixtures, run: Run) -> None:

    @hypothesis.settings(
        max_examples=EXAMPLES * len(strategies),
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=st.one_of(strategies))
    def check(case: Any) -> None:
        _call(case, fixtures, run)

    check()


def _run(world: World, caller: str, only: str | None = None) -> Run:
    fixtures = _data(world, caller)
    schema = schemathesis.openapi.from_asgi("/openapi.json", world.client.app)
    run = Run(caller)
    for result in schema.get_all_operations():
        if isinstance(result, Err):
            raise result.err()  # an operation schemathesis cannot read is a finding too
        operation = result.ok()
        if only is not None and operation.label != only:
            continue
        run.operations += 1
        _coverage(schema, operation, fixtures, run)
        _exercise(operation, list(_strategies(operation, fixtures)), fixtures, run)
    return run


@pytest.mark.parametrize("caller", ["participant", "admin"])
def test_generated_requests_find_nothing(
    world: World, caller: str, capsys: pytest.CaptureFixture[str]
) -> None:
    try:
        run = _run(world, caller)
    finally:
        # Schemathesis keeps each app's lifespan for the process; this one ends here.
        asgi.shutdown_lifespans()
    with capsys.disabled():
        print(f"\n{run.summary()}")
    assert run.operations >= 60
    distinct = list(dict.fromkeys(f.split("\n\n", 2)[0] for f in run.findings))
    assert run.findings == [], f"{run.summary()}\n" + "\n".join(distinct[:30])


def test_a_finding_is_reported(world: World) -> None:
    """The checks are live: a status code the document does not list is a finding."""
    app: Any = world.client.app
    document = app.openapi()
    del document["paths"]["/v1/me"]["patch"]["responses"]["422"]
    run = _run(world, "participant", only="PATCH /v1/me")
    asgi.shutdown_lifespans()
    assert run.operations == 1
    assert any("Undocumented status code" in f for f in run.findings), run.findings
