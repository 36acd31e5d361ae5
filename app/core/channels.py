"""A delivery channel: where a durable sender hands over what it has claimed.

Every channel takes a batch of its own kind of message and answers one result per message,
in order, without raising for a failure of one message; retries, leases and the record of
every attempt stay with the sender that owns the rows (the push outbox, the alert webhook
deliveries), so a channel is only the transport and tests or the simulator can swap it for
a recording one. Channels: FCM and logging for pushes (``app.notifications.providers``),
the signed HTTP webhook and SMTP e-mail for alerts (``app.alerts.webhook``,
``app.alerts.email``).
"""

from collections.abc import Sequence
from typing import Protocol, TypeVar

Message = TypeVar("Message", contravariant=True)
Result = TypeVar("Result")


class Channel(Protocol[Message, Result]):
    # Recorded with every attempt ("fcm", "log", "webhook" …).
    name: str
    # The most messages one send() takes.
    max_batch: int

    def send(self, messages: Sequence[Message]) -> list[Result]:
        """Deliver each message; one result per message, in order. Never raises for a
        per-message failure."""
        ...
