"""Care-team test support: a real SMTP server on 127.0.0.1 (aiosmtpd) that keeps what it
accepts, the world served by an app with SMTP and the webhook configured, and a worker that
sends to the care routes. Fixtures: `inbox`, `care_settings`, `care`."""

import asyncio
import email
import socket
from collections.abc import Iterator
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from fastapi.testclient import TestClient

from app.alerts.sends import CareSendConfig
from app.api.main import create_app
from app.core.config import Settings
from app.notifications.providers import LoggingProvider
from app.staff.models import Role
from app.wiring import Wiring, worker_from_settings
from app.worker.runner import Worker
from tests.conftest import World
from tests.support.scheduling import decide_nothing
from tests.support.webhook_receiver import Receiver


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Inbox:
    """An SMTP server on 127.0.0.1 that keeps what it accepts; recipients listed in
    ``refuse`` are refused (once each time they are tried) while they are listed."""

    def __init__(self) -> None:
        self.messages: list[email.message.Message] = []
        self.refuse: set[str] = set()
        self.port = _free_port()
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    async def handle_RCPT(  # noqa: N802 - aiosmtpd's hook name
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        if address in self.refuse:
            return "550 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(  # noqa: N802 - aiosmtpd's hook name
        self, server: Any, session: Any, envelope: Any
    ) -> str:
        message = email.message_from_bytes(envelope.content)
        message["X-Envelope-To"] = ", ".join(envelope.rcpt_tos)
        self.messages.append(message)
        await asyncio.sleep(0)
        return "250 OK"

    def to(self) -> list[str]:
        return [m["To"] for m in self.messages]

    def close(self) -> None:
        if self.controller.loop.is_running():
            self.controller.stop()


@pytest.fixture
def inbox() -> Iterator[Inbox]:
    box = Inbox()
    yield box
    box.close()


@pytest.fixture
def care_settings(settings: Settings, inbox: Inbox, receiver: Receiver) -> Settings:
    return settings.model_copy(
        update={
            "smtp_host": "127.0.0.1",
            "smtp_port": inbox.port,
            "smtp_from": "kairos@clinic.example",
            "alert_webhook_url": receiver.url,
            "alert_webhook_secret": "hook-secret",
            "alert_webhook_timeout_seconds": 2.0,
            "care_send_max_attempts": 3,
        }
    )


@pytest.fixture
def care(world: World, care_settings: Settings) -> Iterator[World]:
    """The world, served by an app with SMTP and the webhook configured."""
    with TestClient(create_app(care_settings, world.clock), raise_server_exceptions=False) as c:
        yield World(c, world.session_factory, world.clock, world.engine)


def put_routes(world: World, study_id: str, body: dict[str, Any]) -> Any:
    return world.client.put(
        f"/v1/studies/{study_id}/care-team", json=body, headers=world.staff(Role.coordinator)
    )


def care_worker(world: World, settings: Settings) -> Worker:
    wiring = Wiring(
        decider=decide_nothing,
        provider=LoggingProvider(),
        alert_webhook=None,
        care_sends=CareSendConfig.from_settings(settings),
    )
    return worker_from_settings(world.session_factory, world.clock, settings, wiring=wiring)
