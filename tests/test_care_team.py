"""Care-team routes: configured per study through the API, alerts sent through them to a real
local SMTP server (aiosmtpd) and a real webhook receiver, durably and with retries; crisis
answers that show the participant a safety response at once; unacknowledged crisis alerts
escalated to the next level on a simulated clock; and activation refused while a study's
escalation items reach nobody."""

from datetime import timedelta
from typing import Any

from app.alerts.models import AlertSend, SendStatus, WebhookStatus
from app.core.config import Settings
from app.notifications.models import Notification, NotificationKind, NotificationStatus
from app.staff.models import Role
from tests.conftest import World
from tests.support.care import Inbox, care_worker, put_routes
from tests.support.ingest import evening, pain_study, phone
from tests.support.scheduling import add_device
from tests.support.webhook_receiver import Receiver

ON_CALL = {"label": "On-call", "channel": "email", "address": "on-call@clinic.example"}
PAGER = {"label": "Pager", "channel": "webhook", "severities": ["critical"]}
PI = {"level": 1, "label": "PI", "channel": "email", "address": "pi@clinic.example"}


def _alerts(world: World, study_id: str) -> list[dict[str, Any]]:
    response = world.client.get(
        f"/v1/studies/{study_id}/alerts", headers=world.staff(Role.researcher)
    )
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def test_a_crisis_answer_reaches_smtp_and_the_webhook_at_once(
    care: World,
    care_settings: Settings,
    inbox: Inbox,
    receiver: Receiver,
) -> None:
    study_id = pain_study(care)
    assert put_routes(care, study_id, {"routes": [ON_CALL, PAGER]}).status_code == 200
    me = phone(care, study_id)
    add_device(care, me)  # type: ignore[arg-type]
    result = me.post("ema-responses", [evening(care.clock.now(), self_harm=True)])
    [item] = result["items"]
    # The app is told at once what to show, in the batch result.
    assert item["safety_response"]["link"] == "tel:988"
    assert "988" in item["safety_response"]["text"]
    # Delivered after the response, before any worker tick.
    [message] = inbox.messages
    assert message["To"] == "on-call@clinic.example"
    assert message["From"] == "kairos@clinic.example"
    assert message["Subject"].startswith("[Kairos critical]")
    body = message.get_payload()
    assert me.participant["code"] in body
    assert "True" not in body  # answers stay in Kairos
    [posted] = receiver.payloads()  # the route's post only: the study is routed
    assert posted["severity"] == "critical"
    assert posted["level"] == 0
    [alert] = _alerts(care, study_id)
    assert posted["alert_id"] == alert["id"]
    assert alert["webhook_status"] == WebhookStatus.routed
    assert [(s["channel"], s["status"], s["attempts"]) for s in alert["sends"]] == [
        ("email", "delivered", 1),
        ("webhook", "delivered", 1),
    ]
    # The safety response is pushed too, through the outbox, at the next tick.
    with care.session_factory() as session:
        [push] = session.query(Notification).filter_by(kind=NotificationKind.safety_response)
        assert push.deep_link == "tel:988"
        assert push.data == {"alert_id": alert["id"]}
    assert alert["safety_response_push"]["notification_id"] == str(push.id)
    assert alert["safety_response_push"]["status"] == NotificationStatus.pending
    care_worker(care, care_settings).tick()
    with care.session_factory() as session:
        assert session.get_one(Notification, push.id).status == NotificationStatus.sent
    # All of it on the alert's timeline: the care team sees the participant was told.
    [alert] = _alerts(care, study_id)
    assert alert["safety_response_push"]["status"] == NotificationStatus.sent
    assert alert["safety_response_push"]["sent_at"] is not None
    # An answer that raises nothing carries no safety response.
    calm = me.post("ema-responses", [evening(care.clock.now(), self_harm=False)])
    assert "safety_response" not in calm["items"][0]


def test_a_route_takes_only_its_severities(care: World, inbox: Inbox) -> None:
    study_id = pain_study(care)
    route = ON_CALL | {"severities": ["high"]}
    assert put_routes(care, study_id, {"routes": [route]}).status_code == 200
    me = phone(care, study_id)
    me.post("ema-responses", [evening(care.clock.now(), self_harm=True)])
    [alert] = _alerts(care, study_id)
    assert alert["sends"] == []
    assert inbox.messages == []


def test_an_unacknowledged_crisis_alert_is_escalated_to_the_next_level(
    care: World, care_settings: Settings, inbox: Inbox
) -> None:
    study_id = pain_study(care)
    assert put_routes(care, study_id, {"routes": [ON_CALL, PI]}).status_code == 200
    me = phone(care, study_id)
    worker = care_worker(care, care_settings)
    me.post("ema-responses", [evening(care.clock.now(), self_harm=True)])
    assert inbox.to() == ["on-call@clinic.example"]
    [alert] = _alerts(care, study_id)
    assert alert["escalation_level"] == 0
    assert alert["escalation_due_at"] is not None
    care.clock.advance(timedelta(minutes=14))
    worker.tick()
    assert inbox.to() == ["on-call@clinic.example"]  # the declared 15 minutes are not up
    care.clock.advance(timedelta(minutes=2))
    worker.tick()
    worker.tick()  # escalated once, not once per tick
    assert inbox.to() == ["on-call@clinic.example", "pi@clinic.example"]
    [alert] = _alerts(care, study_id)
    assert alert["escalation_level"] == 1
    assert alert["escalation_due_at"] is None  # no level after 1
    assert [(s["level"], s["address"], s["status"]) for s in alert["sends"]] == [
        (0, "on-call@clinic.example", "delivered"),
        (1, "pi@clinic.example", "delivered"),
    ]

    # An alert acknowledged in time goes no further.
    me.post("ema-responses", [evening(care.clock.now(), self_harm=True)])
    second = next(a for a in _alerts(care, study_id) if a["escalation_level"] == 0)
    acknowledged = care.client.post(
        f"/v1/studies/{study_id}/alerts/{second['id']}/acknowledge",
        json={"note": "Called; safe."},
        headers=care.staff(Role.coordinator),
    )
    assert acknowledged.status_code == 200, acknowledged.text
    assert acknowledged.json()["escalation_due_at"] is None
    care.clock.advance(timedelta(hours=1))
    worker.tick()
    assert inbox.to().count("pi@clinic.example") == 1


def test_a_refused_e_mail_is_retried_with_backoff_then_given_up(
    care: World, care_settings: Settings, inbox: Inbox
) -> None:
    study_id = pain_study(care)
    assert put_routes(care, study_id, {"routes": [ON_CALL]}).status_code == 200
    me = phone(care, study_id)
    worker = care_worker(care, care_settings)
    inbox.refuse.add("on-call@clinic.example")
    me.post("ema-responses", [evening(care.clock.now(), self_harm=True)])
    [send] = _alerts(care, study_id)[0]["sends"]
    assert (send["status"], send["attempts"]) == ("pending", 1)
    assert "550" in send["last_error"]
    worker.tick()  # not due yet: the backoff holds it
    assert _alerts(care, study_id)[0]["sends"][0]["attempts"] == 1
    inbox.refuse.clear()
    care.clock.advance(timedelta(minutes=1))
    worker.tick()
    [send] = _alerts(care, study_id)[0]["sends"]
    assert (send["status"], send["attempts"], send["last_error"]) == ("delivered", 2, None)
    assert inbox.to() == ["on-call@clinic.example"]

    # A server that is down fails every attempt; after the configured three, it gives up.
    inbox.close()
    me.post("ema-responses", [evening(care.clock.now(), self_harm=True)])
    for _ in range(4):
        care.clock.advance(timedelta(hours=2))
        worker.tick()
    with care.session_factory() as session:
        statuses = sorted(
            (s.status, s.attempts) for s in session.query(AlertSend).order_by(AlertSend.id)
        )
    assert statuses == [(SendStatus.delivered, 2), (SendStatus.failed, 3)]


def test_coordinators_configure_routes_and_bad_input_names_the_field(world: World) -> None:
    study_id = pain_study(world)
    path = f"/v1/studies/{study_id}/care-team"
    # This app has neither SMTP nor a webhook configured.
    refused = put_routes(world, study_id, {"routes": [ON_CALL]})
    assert refused.status_code == 422
    assert "routes.0.channel" in refused.text
    assert "KAIROS_SMTP_HOST" in refused.text
    no_address = put_routes(world, study_id, {"routes": [{"label": "x", "channel": "email"}]})
    assert no_address.status_code == 422
    assert "address" in no_address.text
    bad_address = put_routes(world, study_id, {"routes": [ON_CALL | {"address": "not an address"}]})
    assert bad_address.status_code == 422
    assert "address" in bad_address.text
    no_reason = put_routes(world, study_id, {"routes": [], "poll_only": True})
    assert no_reason.status_code == 422
    assert "poll_only_reason" in no_reason.text
    researcher = world.client.put(path, json={"routes": []}, headers=world.staff(Role.researcher))
    assert researcher.status_code == 403
    shown = world.client.get(path, headers=world.staff(Role.researcher)).json()
    assert shown == {"routes": [], "poll_only": False, "poll_only_reason": None}


def test_a_study_with_escalation_items_is_activated_only_when_routed(world: World) -> None:
    study_id = pain_study(world)
    coordinator = world.staff(Role.coordinator)
    activate = world.client.patch(
        f"/v1/studies/{study_id}", json={"status": "active"}, headers=coordinator
    )
    assert activate.status_code == 409, activate.text
    problem = activate.json()
    assert problem["code"] == "care_routes_required"
    assert "evening.self_harm" in problem["detail"]
    declared = put_routes(
        world,
        study_id,
        {"routes": [], "poll_only": True, "poll_only_reason": "The study nurse polls at 9:00."},
    )
    assert declared.status_code == 200, declared.text
    assert declared.json()["poll_only"] is True
    activate = world.client.patch(
        f"/v1/studies/{study_id}", json={"status": "active"}, headers=coordinator
    )
    assert activate.status_code == 200, activate.text
    events = world.client.get(
        "/v1/audit-events",
        params={"action": "care_team.replace"},
        headers=world.staff(Role.admin),
    ).json()["items"]
    [event] = events
    assert event["detail"]["poll_only"] is True
    assert event["detail"]["poll_only_reason"] == "The study nurse polls at 9:00."

    # A study that is already active cannot switch to an escalating protocol unrouted.
    other = world.study(status="active")
    uploaded = world.client.post(
        f"/v1/studies/{other['id']}/protocols",
        content=(
            world.client.get(
                f"/v1/studies/{study_id}/protocols/1", headers=world.staff(Role.admin)
            ).json()["source"]
        ),
        headers={**world.staff(Role.admin), "Content-Type": "application/yaml"},
    )
    assert uploaded.status_code == 409, uploaded.text
    assert uploaded.json()["code"] == "care_routes_required"
