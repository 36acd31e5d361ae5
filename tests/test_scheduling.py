"""Materialized schedules, the worker's claims, lateness, re-planning and event triggers,
under a simulated clock, on the configured database."""

import copy
import uuid
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from app.core import events
from app.core.events import ParticipantEvent
from app.decision_rules.engine import decide_batch
from app.decision_rules.models import Decision
from app.notifications.models import Notification, NotificationKind, NotificationStatus
from app.notifications.providers import LoggingProvider
from app.protocols.models import ProtocolVersion
from app.protocols.timing import Event
from app.scheduling.dispatch import claim_due
from app.scheduling.models import ItemKind, ItemStatus, ScheduledItem, ScheduleHorizon
from app.scheduling.triggers import on_participant_event, subscribe_all
from app.staff.models import Role
from app.worker.runner import Worker
from tests.conftest import World
from tests.support.protocols import AFTER_EXERCISE, protocol_yaml
from tests.support.scheduling import (
    RecordingDecider,
    add_device,
    enrolled,
    fire_due,
    items,
    run_until,
    upload,
    worker,
)

BERLIN = ZoneInfo("Europe/Berlin")


def test_enrollment_materializes_two_days_idempotently(world: World) -> None:
    person = enrolled(world, protocol_yaml(dp_times=["09:00", "15:00"], ema_times=["20:00"]))
    with world.session_factory() as session:
        rows = items(session, person.participant_id)
        # Enrolled 2026-03-01 13:00 Berlin: two days ahead, up to 03-03 13:00.
        local = [(r.kind, r.due_at.astimezone(BERLIN).strftime("%m-%d %H:%M")) for r in rows]
        assert local == [
            ("decision_point", "03-01 15:00"),
            ("ema_prompt", "03-01 20:00"),
            ("decision_point", "03-02 09:00"),
            ("decision_point", "03-02 15:00"),
            ("ema_prompt", "03-02 20:00"),
            ("decision_point", "03-03 09:00"),
        ]
        assert all(r.status == ItemStatus.planned and r.sequence is None for r in rows)
        assert rows[2].slot_key == "dp:morning:2026-03-02:0"
        assert rows[2].expires_at == rows[2].due_at + timedelta(minutes=10)
        assert rows[1].expires_at == rows[1].due_at + timedelta(minutes=60)
    w = worker(world)
    w.run_pending()
    w.run_pending()
    with world.session_factory() as session:
        assert len(items(session, person.participant_id)) == 6
    world.clock.advance(timedelta(hours=12))  # a day of horizon left: nothing to do
    w.run_pending()
    with world.session_factory() as session:
        assert len(items(session, person.participant_id)) == 6
    world.clock.advance(timedelta(hours=13))  # the horizon runs short: extended once
    w.run_pending()
    w.run_pending()
    with world.session_factory() as session:
        assert len(items(session, person.participant_id)) == 9
        keys = [r.slot_key for r in items(session, person.participant_id)]
        assert len(keys) == len(set(keys))


def test_decision_point_fires_on_time_once_with_its_push(world: World) -> None:
    person = enrolled(world, protocol_yaml(dp_times=["09:00"], ema_times=[]))
    decider = RecordingDecider()
    w = worker(world, decider)
    due = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)  # 09:00 Berlin
    world.clock.set(due - timedelta(seconds=1))
    w.run_pending()
    assert decider.batches == []
    world.clock.set(due)
    report = w.run_pending()
    assert report.settled.fired == 1
    assert report.sent.sent == 0
    assert len(decider.batches) == 1
    with world.session_factory() as session:
        (item,) = items(session, person.participant_id, due_at=due)
        assert item.status == ItemStatus.done
        assert item.sequence == 0
        assert item.lease_owner is None
        assert item.completed_at == due
        (push,) = session.scalars(sa.select(Notification)).all()
        assert push.kind == NotificationKind.intervention
        assert push.scheduled_item_id == item.id
        assert push.option_id == "walk"
        assert push.expires_at == due + timedelta(minutes=60)
        # No device: the push fails and the participant shows as unreachable.
        assert push.status == NotificationStatus.failed
    w.run_pending()
    assert len(decider.batches) == 1  # never twice


def test_late_decision_point_is_missed_with_a_reason(world: World) -> None:
    person = enrolled(world, protocol_yaml(dp_times=["09:00"], ema_times=[], grace=10))
    decider = RecordingDecider()
    w = worker(world, decider)
    # The worker was down from before 09:00 until 09:11 Berlin.
    world.clock.set(datetime(2026, 3, 2, 8, 11, tzinfo=UTC))
    w.run_pending()
    assert decider.batches == []
    with world.session_factory() as session:
        (item,) = items(session, person.participant_id, due_at=datetime(2026, 3, 2, 8, tzinfo=UTC))
        assert item.status == ItemStatus.missed
        assert item.status_reason is not None
        assert item.status_reason.startswith("late:")
        assert "allowed 600 s" in item.status_reason
        assert item.sequence == 0  # it still counts as a decision point of the trial
        assert session.scalar(sa.select(sa.func.count()).select_from(Notification)) == 0


def test_ema_prompt_reminders_expiry_and_answer(world: World) -> None:
    document = protocol_yaml(
        dp_times=["09:00"], ema_times=["20:00"], reminders={"count": 2, "every_minutes": 20}
    )
    person = enrolled(world, document)
    add_device(world, person)
    w = worker(world)
    prompt_due = datetime(2026, 3, 1, 19, 0, tzinfo=UTC)  # 20:00 Berlin
    run_until(world, w, prompt_due + timedelta(minutes=5))
    with world.session_factory() as session:
        (prompt,) = items(
            session, person.participant_id, kind=ItemKind.ema_prompt, due_at=prompt_due
        )
        assert prompt.status == ItemStatus.done
        pushes = session.scalars(sa.select(Notification).order_by(Notification.send_at)).all()
        assert [(p.kind, p.status) for p in pushes] == [
            ("ema_prompt", "sent"),
            ("reminder", "pending"),
            ("reminder", "pending"),
        ]
        assert [p.send_at - prompt_due for p in pushes] == [
            timedelta(0),
            timedelta(minutes=20),
            timedelta(minutes=40),
        ]
    run_until(world, w, prompt_due + timedelta(minutes=25))
    # The participant answers (ingestion sets answered_at); the second reminder is dropped.
    with world.session_factory() as session:
        session.get_one(ScheduledItem, prompt.id).answered_at = world.clock.now()
        session.commit()
    run_until(world, w, prompt_due + timedelta(minutes=61))
    with world.session_factory() as session:
        statuses = session.scalars(
            sa.select(Notification.status).order_by(Notification.send_at)
        ).all()
        assert statuses == ["sent", "sent", "cancelled"]
        assert session.get_one(ScheduledItem, prompt.id).status == ItemStatus.done


def test_answering_prompts_through_the_api_cancels_their_pending_reminders(
    world: World,
) -> None:
    document = protocol_yaml(
        dp_times=["09:00"],
        ema_times=["19:00", "20:00"],
        reminders={"count": 2, "every_minutes": 20},
        expires_after=50,
    )
    person = enrolled(world, document)
    add_device(world, person)
    w = worker(world)
    last_due = datetime(2026, 3, 1, 19, 0, tzinfo=UTC)  # 20:00 Berlin
    run_until(world, w, last_due + timedelta(minutes=5))
    with world.session_factory() as session:
        prompts = items(session, person.participant_id, kind=ItemKind.ema_prompt)[:2]
    now = world.clock.now()
    answers = [
        {
            "client_id": f"answer-{i}",
            "prompt_id": str(p.id),
            "questionnaire_id": "daily",
            "questionnaire_version": 1,
            "answered_at": now.isoformat(),
            "answers": {"pain": 3},
        }
        for i, p in enumerate(prompts)
    ]
    response = world.client.post(
        "/v1/me/ema-responses", json={"items": answers}, headers=person.headers
    )
    assert [r["status"] for r in response.json()["items"]] == ["accepted", "accepted"]
    with world.session_factory() as session:
        pending = session.scalars(
            sa.select(Notification).where(
                Notification.kind == "reminder", Notification.status == "pending"
            )
        ).all()
        cancelled = session.scalars(
            sa.select(Notification.status_reason).where(Notification.status == "cancelled")
        ).all()
    assert pending == []
    assert cancelled
    assert set(cancelled) == {"prompt answered"}


def test_unanswered_prompt_expires_as_missed(world: World) -> None:
    person = enrolled(world, protocol_yaml(dp_times=["09:00"], ema_times=["20:00"]))
    w = worker(world)
    prompt_due = datetime(2026, 3, 1, 19, 0, tzinfo=UTC)
    run_until(world, w, prompt_due + timedelta(minutes=59))
    with world.session_factory() as session:
        (prompt,) = items(session, person.participant_id, due_at=prompt_due)
        assert prompt.status == ItemStatus.done
    run_until(world, w, prompt_due + timedelta(minutes=61))
    with world.session_factory() as session:
        prompt = session.get_one(ScheduledItem, prompt.id)
        assert prompt.status == ItemStatus.missed
        assert prompt.status_reason == "expired: not answered before the prompt expired"


def test_time_zone_change_replans_only_future_rows(world: World) -> None:
    person = enrolled(world, protocol_yaml(dp_times=["09:00"], ema_times=["20:00"]))
    w = worker(world)
    run_until(world, w, datetime(2026, 3, 1, 19, 30, tzinfo=UTC))  # the 20:00 prompt fired
    response = world.client.patch(
        "/v1/me", json={"timezone": "America/Chicago"}, headers=person.headers
    )
    assert response.status_code == 200
    chicago = ZoneInfo("America/Chicago")
    with world.session_factory() as session:
        rows = items(session, person.participant_id)
        fired = [r for r in rows if r.status == ItemStatus.done]
        assert [r.due_at for r in fired] == [datetime(2026, 3, 1, 19, 0, tzinfo=UTC)]
        planned = [r for r in rows if r.status == ItemStatus.planned]
        assert planned, "future rows are re-planned in the new zone"
        assert {r.due_at.astimezone(chicago).strftime("%H:%M") for r in planned} == {
            "09:00",
            "20:00",
        }
        # The Berlin 2026-03-01 evening prompt fired; Chicago's 20:00 that day is not doubled.
        keys = [r.slot_key for r in rows]
        assert keys.count("ema:evening:2026-03-01:0") == 1


def test_pause_cancels_and_resume_replans(world: World) -> None:
    person = enrolled(world, protocol_yaml(dp_times=["09:00"], ema_times=["20:00"]))
    admin = world.staff(Role.admin)
    path = f"/v1/studies/{person.study_id}/participants/{person.participant_id}/status"
    paused = world.client.post(path, json={"status": "paused", "reason": "holiday"}, headers=admin)
    assert paused.status_code == 200
    with world.session_factory() as session:
        rows = items(session, person.participant_id)
        assert rows
        assert all(r.status == ItemStatus.cancelled for r in rows)
        assert rows[0].status_reason == "participant paused: holiday"
        assert session.get(ScheduleHorizon, person.participant_id) is None
    w = worker(world)
    run_until(world, w, datetime(2026, 3, 2, 12, 0, tzinfo=UTC))
    with world.session_factory() as session:
        assert all(r.status == ItemStatus.cancelled for r in items(session, person.participant_id))
    resumed = world.client.post(path, json={"status": "active", "reason": "back"}, headers=admin)
    assert resumed.status_code == 200
    with world.session_factory() as session:
        rows = items(session, person.participant_id)
        past = [r for r in rows if r.due_at <= world.clock.now()]
        future = [r for r in rows if r.due_at > world.clock.now()]
        assert all(r.status == ItemStatus.cancelled for r in past)  # never rewritten
        assert future
        assert all(r.status == ItemStatus.planned for r in future)
    withdrawn = world.client.post(
        path, json={"status": "withdrawn", "reason": "moved"}, headers=admin
    )
    assert withdrawn.status_code == 200
    with world.session_factory() as session:
        assert not items(session, person.participant_id, status=ItemStatus.planned)


def test_new_protocol_version_replans(world: World) -> None:
    person = enrolled(world, protocol_yaml(dp_times=["09:00"], ema_times=["20:00"]))
    version = upload(world, person.study_id, protocol_yaml(dp_times=["10:00"], ema_times=[]))
    response = world.client.post(
        f"/v1/studies/{person.study_id}/protocols/{version}/activate",
        json={"apply_to": "all_participants"},
        headers=world.staff(Role.admin),
    )
    assert response.status_code == 200
    with world.session_factory() as session:
        planned = items(session, person.participant_id, status=ItemStatus.planned)
        assert {r.due_at.astimezone(BERLIN).strftime("%H:%M") for r in planned} == {"10:00"}
        assert {r.protocol_version for r in planned} == {version}
        cancelled = items(session, person.participant_id, status=ItemStatus.cancelled)
        assert {r.slot_key.split(":")[0] for r in cancelled} == {"ema"}
        assert all(r.status_reason == f"protocol version {version}" for r in cancelled)


def test_event_triggers_create_one_row_per_event(world: World) -> None:
    document = protocol_yaml(
        dp_times=["09:00"],
        ema_times=[],
        extra_ema=[AFTER_EXERCISE],
        extra_decision_points=[
            {"id": "after_ema", "triggers": [{"event": "ema_submitted", "questionnaire": "daily"}]}
        ],
    )
    person = enrolled(world, document)
    subscribe_all()
    reference = uuid.uuid4()
    now = world.clock.now()
    event = ParticipantEvent(
        Event.exercise_completed, person.participant_id, uuid.UUID(person.study_id), now, reference
    )
    with world.session_factory() as session:
        events.publish(session, world.clock, event)
        events.publish(session, world.clock, event)  # a replay
        on_participant_event(
            session,
            world.clock,
            ParticipantEvent(
                Event.ema_submitted,
                person.participant_id,
                uuid.UUID(person.study_id),
                now,
                uuid.uuid4(),
                questionnaire="after",  # filtered out: the trigger wants "daily"
            ),
        )
        session.commit()
    with world.session_factory() as session:
        triggered = [r for r in items(session, person.participant_id) if "-trigger:" in r.slot_key]
        assert len(triggered) == 1
        assert triggered[0].kind == ItemKind.ema_prompt
        assert triggered[0].due_at == now + timedelta(minutes=30)
        assert triggered[0].questionnaire_id == "after"
        assert str(reference) in triggered[0].slot_key
    with world.session_factory() as session:
        on_participant_event(
            session,
            world.clock,
            ParticipantEvent(
                Event.ema_submitted,
                person.participant_id,
                uuid.UUID(person.study_id),
                now,
                uuid.uuid4(),
                questionnaire="daily",
            ),
        )
        session.commit()
        (dp,) = [r for r in items(session, person.participant_id) if r.source_id == "after_ema"]
        assert dp.kind == ItemKind.decision_point
        assert dp.due_at == now
    decider = RecordingDecider()
    worker(world, decider).run_pending()
    assert [len(b) for b in decider.batches] == [1]


def test_expired_lease_is_taken_over_and_the_first_worker_loses(world: World) -> None:
    person = enrolled(world, protocol_yaml(dp_times=["09:00"], ema_times=[]))
    due = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
    world.clock.set(due)
    with world.session_factory() as session:
        claimed = claim_due(session, due, "crashed", timedelta(seconds=120), 10)
        session.commit()
    assert len(claimed) == 1
    decider = RecordingDecider()
    w2 = worker(world, decider, name="w2")
    w2.run_pending()  # the lease still holds: nothing to do
    assert decider.batches == []
    world.clock.advance(timedelta(seconds=121))
    w2.run_pending()
    assert len(decider.batches) == 1
    # The first worker wakes up: its guarded settle finds the row taken over.
    with world.session_factory() as session:
        (item,) = items(session, person.participant_id, due_at=due)
        assert item.status == ItemStatus.done
    late = fire_due(world, "crashed")
    assert late.fired == 0
    with world.session_factory() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(Notification)) == 1


def test_sequence_numbers_per_participant_and_kind_in_due_order(world: World) -> None:
    person = enrolled(world, protocol_yaml(dp_times=["09:00", "15:00"], ema_times=["20:00"]))
    w = worker(world)
    run_until(world, w, datetime(2026, 3, 3, 23, 0, tzinfo=UTC))
    with world.session_factory() as session:
        for kind in ItemKind:
            rows = [
                r
                for r in items(session, person.participant_id, kind=kind)
                if r.status in (ItemStatus.done, ItemStatus.missed)
            ]
            assert [r.sequence for r in rows] == list(range(len(rows)))
            assert rows


def test_a_failing_decider_records_the_row_missed(world: World) -> None:
    person = enrolled(world, protocol_yaml(dp_times=["09:00"], ema_times=[]))

    def broken(*_: object) -> list[None]:
        raise RuntimeError("rule engine exploded")

    w = Worker(
        world.session_factory,
        world.clock,
        tick_seconds=1,
        worker_id="w",
        decider=broken,
        provider=LoggingProvider(),
    )
    world.clock.set(datetime(2026, 3, 2, 8, 0, tzinfo=UTC))
    w.run_pending()
    with world.session_factory() as session:
        (item,) = items(session, person.participant_id, due_at=datetime(2026, 3, 2, 8, tzinfo=UTC))
        assert item.status == ItemStatus.missed
        assert item.status_reason == "failed: RuntimeError: rule engine exploded"


def test_dst_spring_forward_in_chicago_with_a_simulated_clock(world: World) -> None:
    # 02:30 does not exist on 2026-03-08 in Chicago: it fires at 03:30, once.
    document = protocol_yaml(dp_times=["02:30", "09:00"], ema_times=[])
    world.clock.set(datetime(2026, 3, 6, 18, 0, tzinfo=UTC))
    person = enrolled(world, document, timezone="America/Chicago")
    w = worker(world)
    run_until(world, w, datetime(2026, 3, 10, 18, 0, tzinfo=UTC))
    chicago = ZoneInfo("America/Chicago")
    with world.session_factory() as session:
        fired = items(session, person.participant_id, status=ItemStatus.done)
        local = [r.due_at.astimezone(chicago).strftime("%m-%d %H:%M") for r in fired]
        assert local == [
            "03-07 02:30",
            "03-07 09:00",
            "03-08 03:30",
            "03-08 09:00",
            "03-09 02:30",
            "03-09 09:00",
            "03-10 02:30",
            "03-10 09:00",
        ]
        assert not items(session, person.participant_id, status=ItemStatus.missed)


def test_dst_collision_in_new_york_fires_once_and_the_merge_is_recorded(world: World) -> None:
    # 02:00 does not exist on 2026-03-08 in New York; moved to 03:00 it would fire together
    # with the 03:00 decision point. It is merged: one decision, the other row says why.
    document = protocol_yaml(dp_times=["02:00", "03:00"], ema_times=[])
    world.clock.set(datetime(2026, 3, 6, 18, 0, tzinfo=UTC))
    person = enrolled(world, document, timezone="America/New_York")
    w = worker(world, decide_batch)
    run_until(world, w, datetime(2026, 3, 9, 18, 0, tzinfo=UTC))
    new_york = ZoneInfo("America/New_York")
    with world.session_factory() as session:
        rows = {r.slot_key: r for r in items(session, person.participant_id)}
        merged, kept = rows["dp:morning:2026-03-08:0"], rows["dp:morning:2026-03-08:1"]
        assert merged.status == ItemStatus.cancelled
        assert merged.sequence is None
        assert merged.status_reason == (
            "dst: merged into dp:morning:2026-03-08:1: 02:00 does not exist on 2026-03-08 in "
            "America/New_York (the clocks jump forward); moved to 03:00, it falls on the same "
            "instant (03:00 local, 2026-03-08T07:00Z)"
        )
        assert kept.status == ItemStatus.done
        assert kept.due_at == merged.due_at == datetime(2026, 3, 8, 7, tzinfo=UTC)
        assert kept.draw == {"merged": [{"slot_key": merged.slot_key, "local_time": "02:00"}]}
        fired = items(session, person.participant_id, status=ItemStatus.done)
        local = [r.due_at.astimezone(new_york).strftime("%m-%d %H:%M") for r in fired]
        assert local == ["03-07 02:00", "03-07 03:00", "03-08 03:00", "03-09 02:00", "03-09 03:00"]
        assert [r.sequence for r in fired] == [0, 1, 2, 3, 4]
        decisions = session.scalars(
            sa.select(Decision)
            .where(Decision.participant_id == person.participant_id)
            .order_by(Decision.planned_at)
        ).all()
        assert [d.scheduled_item_id for d in decisions] == [r.id for r in fired]
        (noted,) = [d for d in decisions if d.note and "dst:" in d.note]
        assert noted.scheduled_item_id == kept.id
        assert noted.note is not None
        assert noted.note.endswith(
            "dst: also stands for dp:morning:2026-03-08:0 (planned 02:00), which fell on this "
            "instant after a clock change"
        )
        assert not items(session, person.participant_id, status=ItemStatus.missed)


def test_a_slot_moved_past_midnight_fires_on_the_next_date_keyed_to_its_own(
    world: World,
) -> None:
    # Nuuk jumps from 23:00 to 00:00 on 2026-03-28: 23:30 does not exist, but the date does.
    # The evening diary prompt fires at 00:30 on the 29th under the 28th's key; the
    # decision point's 23:30 lands on the 29th's 00:30 and is merged into it; a decision
    # point not active on Sunday the 29th fires its moved 23:30 alone.
    document = protocol_yaml(
        dp_times=["00:30", "23:30"],
        ema_times=["23:30"],
        extra_decision_points=[
            {
                "id": "weekdays",
                "times": ["00:30", "23:30"],
                "days_of_week": ["mon", "tue", "wed", "thu", "fri", "sat"],
            }
        ],
    )
    world.clock.set(datetime(2026, 3, 26, 18, 0, tzinfo=UTC))
    person = enrolled(world, document, timezone="America/Nuuk")
    w = worker(world, decide_batch)
    run_until(world, w, datetime(2026, 3, 30, 12, 0, tzinfo=UTC))
    moved_to = datetime(2026, 3, 29, 1, 30, tzinfo=UTC)  # 00:30 on the 29th in Nuuk
    with world.session_factory() as session:
        rows = {r.slot_key: r for r in items(session, person.participant_id)}
        diary = rows["ema:evening:2026-03-28:0"]
        # Fired (then expired unanswered, as no one answers here).
        assert (diary.due_at, diary.completed_at) == (moved_to, moved_to)
        assert diary.sequence is not None
        assert diary.status_reason == "expired: not answered before the prompt expired"
        merged, kept = rows["dp:morning:2026-03-28:1"], rows["dp:morning:2026-03-29:0"]
        assert merged.status == ItemStatus.cancelled
        assert merged.sequence is None
        assert merged.status_reason == (
            "dst: merged into dp:morning:2026-03-29:0: 23:30 does not exist on 2026-03-28 in "
            "America/Nuuk (the clocks jump forward); moved to 2026-03-29 00:30, it falls on "
            "the same instant (00:30 local, 2026-03-29T01:30Z)"
        )
        assert kept.status == ItemStatus.done
        assert kept.due_at == merged.due_at == moved_to
        assert kept.draw == {"merged": [{"slot_key": merged.slot_key, "local_time": "23:30"}]}
        alone = rows["dp:weekdays:2026-03-28:1"]
        assert (alone.status, alone.due_at) == (ItemStatus.done, moved_to)
        assert "dp:weekdays:2026-03-29:0" not in rows
        (note,) = session.scalars(
            sa.select(Decision.note).where(Decision.scheduled_item_id == kept.id)
        ).all()
        assert note is not None
        assert note.endswith(
            "dst: also stands for dp:morning:2026-03-28:1 (planned 23:30), which fell on this "
            "instant after a clock change"
        )
        missed = items(session, person.participant_id, status=ItemStatus.missed)
        assert all(r.kind == ItemKind.ema_prompt for r in missed)


def test_a_dst_merge_follows_time_zone_changes(world: World) -> None:
    # Re-planning writes the merge as well: a zone without the collision revives the row,
    # and moving back merges it again.
    document = protocol_yaml(dp_times=["02:00", "03:00"], ema_times=[])
    world.clock.set(datetime(2026, 3, 6, 18, 0, tzinfo=UTC))
    person = enrolled(world, document, timezone="America/New_York")
    key = "dp:morning:2026-03-08:0"

    def row() -> ScheduledItem:
        with world.session_factory() as session:
            (item,) = items(session, person.participant_id, slot_key=key)
            return item

    assert row().status == ItemStatus.cancelled
    assert (row().status_reason or "").startswith("dst: merged into dp:morning:2026-03-08:1")
    for zone, status in [("Europe/Berlin", ItemStatus.planned), ("America/New_York", "merged")]:
        response = world.client.patch("/v1/me", json={"timezone": zone}, headers=person.headers)
        assert response.status_code == 200, response.text
        item = row()
        if status == "merged":
            assert item.status == ItemStatus.cancelled
            assert (item.status_reason or "").startswith("dst: merged into")
            assert item.due_at == datetime(2026, 3, 8, 7, tzinfo=UTC)
        else:
            assert item.status == status
            assert item.status_reason is None
            assert item.due_at == datetime(2026, 3, 8, 1, tzinfo=UTC)  # 02:00 in Berlin


def test_a_stored_version_that_a_later_check_refuses_still_loads_and_schedules(
    world: World,
) -> None:
    # A window needs a minute per random time: a check added after versions were stored.
    # A version stored before it (here: its document edited in the database as an older
    # Kairos would have stored it) keeps loading, planning and deciding; uploads refuse it.
    document = protocol_yaml(
        dp_times=["09:00"],
        ema_times=[],
        extra_decision_points=[
            {"id": "afternoon", "random_windows": [{"start": "16:00", "end": "16:03", "count": 3}]}
        ],
    )
    study = world.study()
    version = upload(world, study["id"], document)
    with world.session_factory() as session:
        row = session.scalars(
            sa.select(ProtocolVersion).where(
                ProtocolVersion.study_id == uuid.UUID(study["id"]),
                ProtocolVersion.version == version,
            )
        ).one()
        stored = copy.deepcopy(row.document)
        stored["decision_points"][1]["random_windows"][0]["end"] = "16:02"
        row.document, row.content_hash = stored, "legacy-" + uuid.uuid4().hex
        session.commit()
    participant, _ = world.enrolled_participant(study["id"])
    participant_id = uuid.UUID(participant["id"])
    w = worker(world, decide_batch)
    until = datetime(2026, 3, 3, 12, 0, tzinfo=UTC)
    run_until(world, w, until)
    with world.session_factory() as session:
        rows = [
            r for r in items(session, participant_id, source_id="afternoon") if r.due_at < until
        ]
        assert [r.slot_key for r in rows[:3]] == [f"dp:afternoon:2026-03-01:{i}" for i in range(3)]
        fired = [r for r in rows if r.status == ItemStatus.done]
        # Three moments in two minutes: two of them would share an instant, so they merge.
        assert [r.due_at.astimezone(BERLIN).strftime("%m-%d %H:%M") for r in fired] == [
            "03-01 16:00",
            "03-01 16:01",
            "03-02 16:00",
            "03-02 16:01",
        ]
        merged = [r for r in rows if r.status == ItemStatus.cancelled]
        assert [r.slot_key for r in merged] == [
            "dp:afternoon:2026-03-01:2",
            "dp:afternoon:2026-03-02:2",
        ]
        decided = session.scalars(
            sa.select(Decision.scheduled_item_id).where(Decision.participant_id == participant_id)
        ).all()
        assert {r.id for r in fired} <= set(decided)
    admin = world.staff(Role.admin)
    response = world.client.get(f"/v1/studies/{study['id']}/protocols/{version}", headers=admin)
    assert response.status_code == 200, response.text
    response = world.client.post(f"/v1/studies/{study['id']}/protocols", json=stored, headers=admin)
    assert response.status_code == 422, response.text
    assert "3 random times need 3 distinct minutes" in response.text
