"""What a decider hands the outbox: one intervention to push for one decision point."""

import uuid
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Delivery:
    """An intervention to push, as decided for one decision point."""

    decision_id: uuid.UUID
    option_id: str
    title: str
    body: str
    deep_link: str | None = None
    # Extra string key/values for the app (exercise id, expected duration …).
    data: dict[str, str] = field(default_factory=dict)
