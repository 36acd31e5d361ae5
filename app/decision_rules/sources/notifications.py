"""Prompts sent: intervention notifications created within the window, not cancelled
(the outbox's one definition, ``app.notifications.history``)."""

from collections import Counter
from collections.abc import Sequence
from typing import Any, ClassVar

from sqlalchemy.orm import Session

from app.decision_rules.bounds import Bound, bounds_table
from app.decision_rules.sources.base import Queried, Row
from app.notifications.history import intervention_prompts
from app.protocols.document import TailoringVariable


class NotificationsReader(Queried):
    source: ClassVar[str] = "notifications"

    def shape(self, variable: TailoringVariable) -> tuple[str, ...]:
        return ("notifications",)

    def query(
        self, session: Session, shape: tuple[str, ...], bounds: Sequence[Bound]
    ) -> dict[int, Row]:
        counts = Counter(k for k, _ in intervention_prompts(session, bounds_table(session, bounds)))
        return {k: {"count": count} for k, count in counts.items()}

    def pick(self, variable: TailoringVariable, row: Row | None) -> Any:
        return row["count"] if row else 0
