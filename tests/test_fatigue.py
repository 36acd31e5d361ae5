"""Treatment fatigue, redesigned (issue 16, item 5): a sustained or gradual decline against
the participant's own early rate, with hysteresis; the response that lowers the burden of
EMA schedules, reminders and interventions; one re-engagement message per episode; and the
care team ending it.

The two trajectories of the issue (3 EMA prompts a day, 21 a week):
- 20/21 in the first weeks, then 10/21 for a week and 10/21 the next: flagged, and it
  stays flagged (the week-over-week detector resolved it by itself);
- a gradual fall 20, 16, 13, 10, 8, 6 of 21: flagged (never, week over week).
"""

import threading
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st

from app.audit.models import AuditEvent
from app.core.config import Settings
from app.decision_rules.evaluation import burden_reason
from app.decision_rules.moment import Moment
from app.monitoring.fatigue import Counts, assess, end_fatigue_episode
from app.monitoring.flags import evaluate_all
from app.monitoring.models import CareFlag
from app.notifications.models import Notification
from app.participants.models import Participant
from app.protocols.loading import parse_protocol
from app.protocols.monitoring import Fatigue
from app.protocols.timing import EmaSchedule
from app.scheduling.burden import thinned_out, with_reminders_scaled
from app.staff.models import Role
from tests.conftest import World, is_postgres_run
from tests.support.care import Inbox, care_worker, put_routes
from tests.support.decisions import example_document
from tests.support.scheduling import decide_nothing, items, run_until, worker
from tests.support.webhook_receiver import Receiver
from tests.test_exports import PAIN_ATTRIBUTES
from tests.test_monitoring import _prompts, _study

DAY = timedelta(days=1)
RULE = Fatigue()  # the defaults: 14 baseline days, 7-day window, 0.7 / 3 days, 0.85 / 7 days
FLAT = [20, 20, 10, 10]
GRADUAL = [20, 16, 13, 10, 8, 6]


def answered_on(weekly: Sequence[int], per_day: int = 3) -> list[list[bool]]:
    """Per study day, whether each of its prompts was answered: each week's answers spread
    evenly over its 7 x per_day prompts (so every 7-day window inside a week sees the week's
    count)."""
    days = []
    slots = 7 * per_day
    for answered in weekly:
        flags = [(j + 1) * answered // slots > j * answered // slots for j in range(slots)]
        days += [flags[d * per_day : (d + 1) * per_day] for d in range(7)]
    return days


def series_of(weekly: Sequence[int]) -> dict[str, list[Counts]]:
    return {"ema_completion": [(len(day), sum(day)) for day in answered_on(weekly)]}


def walk(rule: Fatigue, series: dict[str, list[Counts]], ended_on: int | None = None) -> list[bool]:
    """Whether an episode is open on each study day, evaluated at the start of every day as
    the worker does (days 0 .. n-1 complete); ``ended_on``: the care team ends it then."""
    days = len(series["ema_completion"])
    opened: int | None = None
    from_day = 0
    state = []
    for today in range(1, days + 1):
        seen = {m: s[:today] for m, s in series.items()}
        found = assess(rule, seen, opened_day=opened, from_day=from_day)
        if opened is None and found is not None and found.declined:
            opened = today
        elif opened is not None and found is not None and found.recovered:
            opened = None
        if ended_on == today and opened is not None:
            opened, from_day = None, today + 1
        state.append(opened is not None)
    return state


# --- the detector alone -------------------------------------------------------------------


def test_a_drop_that_stays_low_stays_flagged() -> None:
    state = walk(RULE, series_of(FLAT))
    assert not any(state[:15])  # nothing during the baseline
    assert state[20]  # flagged within the week of the drop
    first = state.index(True)
    assert all(state[first:])  # and the second week at 10/21 does not resolve it
    assert len(state) == 28


def test_a_gradual_fall_is_flagged() -> None:
    state = walk(RULE, series_of(GRADUAL))
    assert not any(state[:21])  # 13/21 in week 2 is 72% of the baseline's 36/42: not yet
    assert state[27]  # 10/21 (56%) in week 3
    assert all(state[state.index(True) :])


def test_recovery_clears_only_above_the_higher_threshold() -> None:
    # 16/21 is 80% of the baseline: above flag_below (0.7), below clear_above (0.85).
    state = walk(RULE, series_of([20, 20, 10, 16, 16]))
    assert all(state[20:])
    recovered = walk(RULE, series_of([20, 20, 10, 20, 20]))
    assert recovered[20]
    assert not recovered[-1]
    back = recovered.index(False, 21)
    # Seven days running at or above 85% of the baseline (the window has to fill first).
    assert back >= 21 + RULE.clear_after_days


def test_the_care_team_ending_it_needs_fresh_evidence_to_reopen() -> None:
    # state[i] is study day i + 1 (evaluated on the days completed before it).
    state = walk(RULE, series_of([20, 20, 10, 10, 10, 10]), ended_on=22)
    assert state[20]
    assert not state[21]
    # Windows wholly after the end: window_days + flag_after_days - 1 days later at least.
    reopened = state.index(True, 21)
    assert reopened >= 21 + RULE.window_days + RULE.flag_after_days - 1
    assert all(state[reopened:])


def test_too_few_prompts_are_not_judged() -> None:
    sparse = {"ema_completion": [(1, 1)] * 14 + [(0, 0)] * 14}
    assert not any(walk(RULE, sparse))
    assert assess(RULE, {"ema_completion": [(3, 3)] * 10}) is None  # baseline not over


def test_the_deprecated_drop_fraction_reads_as_flag_below() -> None:
    assert Fatigue(drop_fraction=0.4).threshold == 0.6
    assert Fatigue(drop_fraction=0.4, flag_below=0.5).threshold == 0.5


@settings(max_examples=60, deadline=None)
@given(
    per_day=st.integers(min_value=1, max_value=6),
    days=st.integers(min_value=15, max_value=50),
)
def test_a_steady_rate_is_never_flagged(per_day: int, days: int) -> None:
    assert not any(walk(RULE, {"ema_completion": [(per_day, per_day)] * days}))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=3), min_size=15, max_size=60))
def test_declined_and_recovered_never_hold_together(answered: list[int]) -> None:
    series = {"ema_completion": [(3, a) for a in answered]}
    for today in range(15, len(answered) + 1):
        seen = {"ema_completion": series["ema_completion"][:today]}
        found = assess(RULE, seen, opened_day=0)
        if found is not None:
            assert not (found.declined and found.recovered)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=3), min_size=28, max_size=56))
def test_an_episode_lasts_at_least_the_clearing_days(answered: list[int]) -> None:
    state = walk(RULE, {"ema_completion": [(3, a) for a in answered]})
    runs, run = [], 0
    for is_open in [*state, False]:
        if is_open:
            run += 1
        elif run:
            runs.append(run)
            run = 0
    closed_runs = runs[:-1] if state[-1] else runs
    assert all(r >= RULE.clear_after_days for r in closed_runs)


def test_protocol_problems_are_located() -> None:
    document = example_document()
    document["monitoring"]["fatigue"]["clear_above"] = 0.6
    response = _problems(document)
    assert any("clear_above" in p["message"] for p in response)
    document["monitoring"]["fatigue"]["clear_above"] = 0.9
    document["monitoring"]["fatigue"]["measures"] = ["steps"]
    assert any(p["path"].startswith("monitoring.fatigue.measures") for p in _problems(document))


def _problems(document: dict[str, Any]) -> list[dict[str, str]]:
    from app.protocols.loading import ProtocolInvalid

    try:
        parse_protocol(document)
    except ProtocolInvalid as exc:
        return [{"path": p.path, "message": p.message} for p in exc.problems]
    raise AssertionError("the document was accepted")


def test_without_a_cap_the_factor_scales_the_decision_moments() -> None:
    document = example_document()
    del document["policy"]["availability"]["max_prompts_per_day"]
    protocol = parse_protocol(document)
    assert protocol.decision_moments_per_day == 5
    local = datetime(2026, 3, 3, 14, 0, tzinfo=ZoneInfo("Europe/Berlin"))
    assert burden_reason(protocol, Moment("afternoon", local, {}, prompts_today=4)) is None
    tired = Moment("afternoon", local, {}, prompts_today=2, prompt_budget_factor=0.5)
    assert burden_reason(protocol, tired) == "daily cap reached (2 prompts today, the cap is 2)"


@settings(max_examples=20, deadline=None)
@given(factor=st.sampled_from([0.25, 0.5, 0.75]))
def test_thinning_keeps_the_factors_share_reproducibly(factor: float) -> None:
    participant = uuid.uuid4()
    slots = [f"ema:afternoon:2026-03-{d:02d}:{n}" for d in range(1, 29) for n in range(40)]
    dropped = [thinned_out(participant, slot, factor) for slot in slots]
    assert abs(sum(not d for d in dropped) / len(slots) - factor) < 0.06
    assert dropped == [thinned_out(participant, slot, factor) for slot in slots]
    assert not any(thinned_out(participant, slot, 1.0) for slot in slots)


def test_reminders_are_scaled_down() -> None:
    schedule = EmaSchedule(
        id="s", questionnaire="q", times=["08:00"], reminders={"count": 3, "every_minutes": 10}
    )
    assert with_reminders_scaled(schedule, 0.5).reminders.count == 1
    assert with_reminders_scaled(schedule, 0.5).reminders.every_minutes == 10
    assert with_reminders_scaled(schedule, 1.0) is schedule


# --- through the app -----------------------------------------------------------------------


def _seed_prompts(world: World, participant: dict[str, Any], weekly: Sequence[int]) -> None:
    start = world.clock.now()
    with world.session_factory() as session:
        for day, answers in enumerate(answered_on(weekly)):
            _prompts(session, participant, start + day * DAY, len(answers), sum(answers))
        session.commit()


def _daily_evaluations(world: World, study_id: str, start: datetime, days: range) -> list[bool]:
    """Evaluate the flags at 01:00 of each study day; whether a fatigue flag is open."""
    state = []
    for day in days:
        world.clock.set(start + day * DAY + timedelta(minutes=30))
        with world.session_factory() as session:
            evaluate_all(session, world.clock)
            session.commit()
        state.append(bool(_fatigue_flags(world, study_id)))
    return state


def _fatigue_flags(world: World, study_id: str, **params: Any) -> list[dict[str, Any]]:
    response = world.client.get(
        f"/v1/studies/{study_id}/flags",
        params={"kind": "fatigue", **params},
        headers=world.staff(Role.coordinator),
    )
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()["items"]
    return found


def _participant_row(world: World, participant: dict[str, Any]) -> Participant:
    with world.session_factory() as session:
        row = session.get_one(Participant, uuid.UUID(participant["id"]))
        session.expunge(row)
        return row


def _re_engagements(world: World, participant: dict[str, Any]) -> list[Notification]:
    with world.session_factory() as session:
        return list(
            session.scalars(
                sa.select(Notification).where(
                    Notification.participant_id == uuid.UUID(participant["id"]),
                    Notification.kind == "re_engagement",
                )
            )
        )


def _setup(world: World, weekly: Sequence[int]) -> tuple[dict[str, Any], dict[str, Any]]:
    study = _study(world)
    participant, _ = world.enrolled_participant(study["id"], attributes=PAIN_ATTRIBUTES)
    _seed_prompts(world, participant, weekly)
    return study, participant


def test_the_flat_drop_stays_flagged_through_the_app(world: World) -> None:
    start = world.clock.now()
    study, participant = _setup(world, FLAT)
    state = _daily_evaluations(world, study["id"], start, range(1, 29))
    assert not any(state[:14])
    first = state.index(True)
    assert all(state[first:]), state  # week 3 at 10/21 keeps it open
    flag = _fatigue_flags(world, study["id"])[0]
    rates = flag["detail"]["rates"]["ema_completion"]
    assert rates["baseline"] == round(40 / 42, 4)
    assert rates["rolling"] == round(10 / 21, 4)
    assert flag["resolution"] is None
    assert _participant_row(world, participant).burden_factor == 0.5
    # One re-engagement message for the episode, however often it is evaluated.
    messages = _re_engagements(world, participant)
    assert len(messages) == 1
    assert messages[0].title == "Thank you for sticking with it"
    assert flag["detail"]["re_engagement_notification_id"] == str(messages[0].id)


def test_the_gradual_fall_is_flagged_through_the_app(world: World) -> None:
    start = world.clock.now()
    study, _participant = _setup(world, GRADUAL)
    state = _daily_evaluations(world, study["id"], start, range(1, 43))
    assert not any(state[:21])
    assert state[-1]
    assert len(_fatigue_flags(world, study["id"])) == 1


def test_recovery_resolves_the_episode_and_lifts_the_response(world: World) -> None:
    start = world.clock.now()
    study, participant = _setup(world, [20, 20, 10, 20, 20, 20])
    state = _daily_evaluations(world, study["id"], start, range(1, 43))
    assert any(state)
    assert not state[-1]
    history = _fatigue_flags(world, study["id"], unresolved="false")
    assert [f["resolution"] for f in history] == ["condition_gone"]
    assert _participant_row(world, participant).burden_factor == 1.0


def test_acknowledging_with_end_response_ends_the_episode(world: World) -> None:
    start = world.clock.now()
    study, participant = _setup(world, [*FLAT, 10])
    _daily_evaluations(world, study["id"], start, range(1, 22))
    flag = _fatigue_flags(world, study["id"])[0]
    url = f"/v1/studies/{study['id']}/flags/{flag['id']}/acknowledge"
    staff = world.staff(Role.coordinator)

    # A plain acknowledgement changes nothing but the record.
    plain = world.client.post(url, json={"note": "Called; they are busy."}, headers=staff)
    assert plain.status_code == 200, plain.text
    assert plain.json()["resolved_at"] is None
    assert _participant_row(world, participant).burden_factor == 0.5

    bad = world.client.post(url, json={"note": "x", "end_response": "soon"}, headers=staff)
    assert bad.status_code == 422
    assert "end_response" in bad.text

    ended = world.client.post(
        url, json={"note": "Agreed a lighter plan.", "end_response": True}, headers=staff
    )
    assert ended.status_code == 200, ended.text
    assert ended.json()["resolution"] == "ended_by_care_team"
    assert ended.json()["resolved_at"] is not None
    assert _participant_row(world, participant).burden_factor == 1.0
    again = world.client.post(url, json={"note": "x", "end_response": True}, headers=staff)
    assert again.status_code == 409
    assert again.json()["errors"][0]["field"] == "body.end_response"
    with world.session_factory() as session:
        actions = session.scalars(
            sa.select(AuditEvent.action).where(AuditEvent.resource_id == flag["id"])
        ).all()
    assert "fatigue.end" in actions

    # Still low, but the next evaluations need fresh windows: not re-opened the next day.
    _daily_evaluations(world, study["id"], start, range(22, 24))
    assert _fatigue_flags(world, study["id"]) == []


def test_end_response_is_refused_on_other_flags(world: World) -> None:
    study = _study(world)
    participant, _ = world.enrolled_participant(study["id"], attributes=PAIN_ATTRIBUTES)
    with world.session_factory() as session:
        flag = CareFlag(
            participant_id=uuid.UUID(participant["id"]),
            study_id=uuid.UUID(study["id"]),
            kind="unreachable",
            detail={},
            raised_at=world.clock.now(),
        )
        session.add(flag)
        session.commit()
        flag_id = flag.id
    response = world.client.post(
        f"/v1/studies/{study['id']}/flags/{flag_id}/acknowledge",
        json={"note": "x", "end_response": True},
        headers=world.staff(Role.coordinator),
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "body.end_response"


def test_the_review_hook_ends_the_episode(world: World) -> None:
    from app.audit.service import Actor

    start = world.clock.now()
    study, participant = _setup(world, FLAT)
    _daily_evaluations(world, study["id"], start, range(1, 22))
    pid = uuid.UUID(participant["id"])
    with world.session_factory() as session:
        ended = end_fatigue_episode(
            session, world.clock, Actor("staff", "reviewer"), pid, reason="review 1"
        )
        assert ended is not None
        assert (
            end_fatigue_episode(session, world.clock, Actor("staff", "r"), pid, reason="x") is None
        )
        session.commit()
    assert _fatigue_flags(world, study["id"]) == []
    history = _fatigue_flags(world, study["id"], unresolved="false")
    assert history[0]["resolution"] == "ended_by_care_team"


def test_completing_a_review_can_end_the_episode(world: World) -> None:
    from app.care.reviews import plan_all

    start = world.clock.now()
    study, participant = _setup(world, FLAT)
    _daily_evaluations(world, study["id"], start, range(1, 22))
    assert _fatigue_flags(world, study["id"])
    with world.session_factory() as session:
        plan_all(session, world.clock)  # the 14-day cadence review: overdue by day 21
        session.commit()
    staff = world.staff(Role.coordinator)
    due = world.client.get(
        f"/v1/studies/{study['id']}/reviews", params={"status": "overdue"}, headers=staff
    )
    assert due.status_code == 200, due.text
    (review, *_) = due.json()["items"]
    url = f"/v1/studies/{study['id']}/reviews/{review['id']}/complete"
    body = {"outcome": "step_down", "note": "Lighter plan agreed.", "end_fatigue_response": True}
    done = world.client.post(url, json=body, headers=staff)
    assert done.status_code == 200, done.text
    assert _fatigue_flags(world, study["id"]) == []
    history = _fatigue_flags(world, study["id"], unresolved="false")
    assert history[0]["resolution"] == "ended_by_care_team"
    assert _participant_row(world, participant).burden_factor == 1.0


def test_a_new_flag_reaches_the_care_routes_by_e_mail_and_webhook(
    care: World, care_settings: Settings, inbox: Inbox, receiver: Receiver
) -> None:
    start = care.clock.now()
    study, participant = _setup(care, FLAT)
    routes = {
        "routes": [
            {"label": "Study nurse", "channel": "email", "address": "nurse@clinic.example"},
            {"label": "Dashboard", "channel": "webhook"},
        ]
    }
    assert put_routes(care, study["id"], routes).status_code == 200
    worker = care_worker(care, care_settings)
    _daily_evaluations(care, study["id"], start, range(1, 22))
    worker.tick()
    (flag,) = _fatigue_flags(care, study["id"])
    # (The seeded participant never opened the app: an unreachable flag is sent too.)
    [mail] = [m for m in inbox.messages if "fatigue" in m["Subject"]]
    assert mail["Subject"].startswith("[Kairos flag]")
    assert participant["code"] in mail["Subject"]
    assert str(flag["id"]) in mail.get_payload()
    assert inbox.to() == ["nurse@clinic.example"] * len(inbox.messages)
    (hook,) = [p for p in receiver.payloads() if p.get("kind") == "fatigue"]
    assert hook["type"] == "kairos.flag"
    assert hook["flag_id"] == flag["id"]
    assert hook["kind"] == "fatigue"
    assert "detail" not in hook  # ids and the kind, never the participant's data
    assert sorted((s["channel"], s["status"]) for s in flag["sends"]) == [
        ("email", "delivered"),
        ("webhook", "delivered"),
    ]
    # Sent once: later evaluations of the open episode send nothing more.
    sent = len(inbox.messages)
    _daily_evaluations(care, study["id"], start, range(22, 24))
    worker.tick()
    assert len(inbox.messages) == sent


def test_the_response_thins_droppable_schedules_and_reminders(world: World) -> None:
    world.clock.set(datetime(2026, 3, 1, 6, 0, tzinfo=UTC))
    study = _study(world)
    participant, _ = world.enrolled_participant(
        study["id"], timezone="UTC", attributes=PAIN_ATTRIBUTES
    )
    pid = uuid.UUID(participant["id"])
    with world.session_factory() as session:
        session.get_one(Participant, pid).burden_factor = 0.5
        session.commit()
    run_until(world, worker(world, decide_nothing), world.clock.now() + 20 * DAY)
    with world.session_factory() as session:
        afternoon = items(session, pid, source_id="afternoon", kind="ema_prompt")
        morning = items(session, pid, source_id="morning", kind="ema_prompt")
        thinned = [i for i in afternoon if (i.status_reason or "").startswith("fatigue response")]
        reminders = session.scalar(
            sa.select(sa.func.count()).where(
                Notification.participant_id == pid,
                Notification.kind == "reminder",
            )
        )
    fired = [i for i in afternoon if i.status in ("done", "missed")]
    assert len(fired) + len(thinned) >= 19
    assert 0 < len(thinned) < len(fired) + len(thinned)
    assert all(i.status == "cancelled" and i.sequence is None for i in thinned)
    # Morning prompts are not droppable: all of them fire.
    assert not any((i.status_reason or "").startswith("fatigue") for i in morning)
    # One reminder per prompt x 0.5 rounds down to none.
    assert reminders == 0


def test_the_decision_log_and_export_carry_the_burden_factor(world: World) -> None:
    from tests.support.decisions import Trial

    world.clock.set(datetime(2026, 3, 1, 8, 0, tzinfo=UTC))
    trial = Trial(world)
    participant = trial.participant()
    with world.session_factory() as session:
        session.get_one(Participant, participant).burden_factor = 0.5
        session.commit()
    decision, _ = trial.decide_one(
        participant, "afternoon", datetime(2026, 3, 4, 13, 0, tzinfo=UTC)
    )
    assert decision.burden_factor == 0.5
    history = world.client.get(
        f"/v1/studies/{trial.study_id}/participants/{participant}/decisions",
        headers=world.staff(Role.researcher),
    )
    assert history.status_code == 200, history.text
    assert [d["burden_factor"] for d in history.json()["items"]] == [0.5]
    response = world.client.get(
        f"/v1/studies/{trial.study_id}/exports/decisions/dictionary",
        headers=world.staff(Role.researcher),
    )
    assert response.status_code == 200, response.text
    columns = {c["name"]: c for c in response.json()["data_dictionary"]["columns"]}
    assert "fatigue" in columns["burden_factor"]["meaning"]


@pytest.mark.skipif(not is_postgres_run(), reason="row locks are PostgreSQL's")
def test_two_workers_evaluating_at_once_send_one_message(world: World) -> None:
    start = world.clock.now()
    study, participant = _setup(world, FLAT)
    world.clock.set(start + 21 * DAY + timedelta(minutes=30))
    first = world.session_factory()
    raised_first = evaluate_all(first, world.clock)  # holds the study's lock until commit
    done: list[int] = []

    def second_worker() -> None:
        with world.session_factory() as session:
            done.append(evaluate_all(session, world.clock))
            session.commit()

    thread = threading.Thread(target=second_worker)
    thread.start()
    thread.join(timeout=1)
    assert thread.is_alive()  # waiting for the first worker's lock
    first.commit()
    first.close()
    thread.join(timeout=30)
    assert raised_first >= 1
    assert done == [0]
    assert len(_fatigue_flags(world, study["id"])) == 1
    assert len(_re_engagements(world, participant)) == 1
