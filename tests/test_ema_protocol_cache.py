"""Parsed protocols are kept per (study, version) in the process; a participant moved to a
new version is judged on that version from the next batch on, and one left behind on
theirs, whatever the cache holds."""

from app.protocols.example_files import CHRONIC_PAIN_JITAI, example_text
from app.staff.models import Role
from tests.conftest import World
from tests.support.ingest import Phone, morning, pain_study, phone

INTERFERENCE = """      - id: interference
        type: numeric_rating
        text: How much is pain getting in the way of what you want to do?
        min: 0
        max: 10
"""


def _upload_v2(world: World, study_id: str) -> None:
    """Version 2 of the protocol: the morning questionnaire's interference scale is 0..12
    (the same questionnaire version, so only the protocol version tells them apart)."""
    text = example_text(CHRONIC_PAIN_JITAI)
    assert INTERFERENCE in text
    uploaded = world.client.post(
        f"/v1/studies/{study_id}/protocols",
        content=text.replace(INTERFERENCE, INTERFERENCE.replace("max: 10", "max: 12")),
        headers={**world.staff(Role.admin), "Content-Type": "application/yaml"},
    )
    assert uploaded.status_code == 201, uploaded.text


def _activate_v2(world: World, study_id: str, apply_to: str) -> None:
    activated = world.client.post(
        f"/v1/studies/{study_id}/protocols/2/activate",
        json={"apply_to": apply_to},
        headers=world.staff(Role.admin),
    )
    assert activated.status_code == 200, activated.text


def _status(world: World, me: Phone, interference: int) -> str:
    item = morning(world.clock.now(), interference=interference)
    status: str = me.post("ema-responses", [item])["items"][0]["status"]
    return status


def test_a_participant_is_judged_on_their_own_version_as_it_changes(world: World) -> None:
    study_id = pain_study(world)
    moved, stays = phone(world, study_id), phone(world, study_id)
    # Both have version 1 parsed and kept by now.
    assert _status(world, moved, 10) == "accepted"
    assert _status(world, stays, 11) == "rejected"
    _upload_v2(world, study_id)
    _activate_v2(world, study_id, "new_participants")
    newcomer = phone(world, study_id)
    assert _status(world, newcomer, 11) == "accepted"
    assert _status(world, stays, 11) == "rejected"
    assert _status(world, moved, 11) == "rejected"
    _activate_v2(world, study_id, "all_participants")
    assert _status(world, moved, 11) == "accepted"
    assert _status(world, stays, 12) == "accepted"
    assert _status(world, stays, 13) == "rejected"
