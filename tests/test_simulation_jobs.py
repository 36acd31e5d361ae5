"""Simulations of a stored protocol version, requested through the API and run by a worker."""

import io
import json
import zipfile
from pathlib import Path

from app.core.clock import SimulatedClock
from app.protocols.example_files import MINIMAL, example_text
from app.simulation.jobs import run_next_simulation
from app.staff.models import Role
from tests.conftest import World
from tests.support.scheduling import upload, worker


def _study_with_protocol(world: World) -> str:
    study_id = str(world.study()["id"])
    upload(world, study_id, example_text(MINIMAL))
    return study_id


def test_a_requested_simulation_is_run_by_the_worker_and_downloaded(world: World) -> None:
    study_id = _study_with_protocol(world)
    coordinator = world.staff(Role.coordinator)
    started = world.client.post(
        f"/v1/studies/{study_id}/simulations",
        json={"participants": 3, "days": 3, "seed": 4},
        headers=coordinator,
    )
    assert started.status_code == 202, started.text
    job = started.json()
    assert (job["status"], job["protocol_version"], job["report"]) == ("pending", 1, None)
    url = f"/v1/studies/{study_id}/simulations/{job['id']}"
    assert world.client.get(f"{url}/bundle", headers=coordinator).status_code == 409
    # The worker runs it beside exports.
    export_dir = world.client.app.state.settings.export_dir  # type: ignore[attr-defined]
    worker(world, export_dir=export_dir, background_jobs=(run_next_simulation,)).run_exports()
    done = world.client.get(url, headers=world.staff(Role.researcher)).json()
    assert done["status"] == "done", done
    assert done["report"]["simulation"]["participants"] == 3
    assert done["report"]["rules"]["fired"] == {"everyone": 9}  # 3 people x 3 days
    bundle = world.client.get(f"{url}/bundle", headers=coordinator)
    assert bundle.status_code == 200
    with zipfile.ZipFile(io.BytesIO(bundle.content)) as archive:
        assert sorted(archive.namelist()) == ["decisions.csv", "report.html", "report.json"]
        stored = json.loads(archive.read("report.json"))
    assert stored["rules"] == done["report"]["rules"]


def test_nothing_to_run_is_no_work(world: World, tmp_path: Path) -> None:
    clock = SimulatedClock(world.clock.now())
    assert not run_next_simulation(world.session_factory, clock, str(tmp_path), "w")


def test_a_bad_simulation_request_names_the_field(world: World) -> None:
    study_id = _study_with_protocol(world)
    url = f"/v1/studies/{study_id}/simulations"
    coordinator = world.staff(Role.coordinator)
    bad_model = world.client.post(
        url, json={"behaviour": "answering: {probability: 2}\n"}, headers=coordinator
    )
    assert bad_model.status_code == 422
    assert bad_model.json()["errors"][0]["field"] == "body.behaviour.answering.probability"
    misfit = world.client.post(
        url,
        json={"behaviour": "effects: [{option: yoga, item: pain, shift: -1}]"},
        headers=coordinator,
    )
    assert misfit.status_code == 422, misfit.text
    assert misfit.json()["errors"][0]["field"] == "body.behaviour.effects.0.option"
    assert "no option 'yoga'" in misfit.json()["errors"][0]["message"]
    too_many = world.client.post(url, json={"participants": 100_000}, headers=coordinator)
    assert too_many.status_code == 422
    assert "participants" in too_many.text
    no_version = world.client.post(url, json={"protocol_version": 9}, headers=coordinator)
    assert no_version.status_code == 404
    researcher = world.client.post(url, json={}, headers=world.staff(Role.researcher))
    assert researcher.status_code == 403


def test_a_study_without_a_protocol_cannot_be_simulated(world: World) -> None:
    study = world.study()
    response = world.client.post(
        f"/v1/studies/{study['id']}/simulations", json={}, headers=world.staff(Role.coordinator)
    )
    assert response.status_code == 409
    assert response.json()["code"] == "no_protocol_version"
