"""EMA answers: answered (``ema_answers.answered_at``, the device's time of answering) at
or before the decision time. Live, an answer still on an offline phone is not in the
database and cannot count; the decision log keeps the values actually used. (Checking the
response's ``received_at`` too would cost a join per answer: it made the batch several
times slower.)"""

from collections.abc import Sequence
from typing import Any, ClassVar

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.decision_rules.bounds import Bound, bounds_table
from app.decision_rules.sources.aggregates import mode, pick_windowed, read_window
from app.decision_rules.sources.base import Queried, Row
from app.ema.models import EmaAnswer
from app.protocols.document import EmaVariable, TailoringVariable


class EmaReader(Queried):
    source: ClassVar[str] = "ema"

    def shape(self, variable: TailoringVariable) -> tuple[str, ...]:
        assert isinstance(variable, EmaVariable)  # noqa: S101 - the registry's key
        questionnaire, _, item = variable.item.partition(".")
        return ("ema", questionnaire, item, mode(variable))

    def query(
        self, session: Session, shape: tuple[str, ...], bounds: Sequence[Bound]
    ) -> dict[int, Row]:
        _, questionnaire, item, how = shape
        b = bounds_table(session, bounds)
        a = EmaAnswer
        on = [
            a.participant_id == b.c.pid,
            a.item_id == item,
            a.answered_at >= b.c.s,
            a.answered_at <= b.c.e,
        ]
        if questionnaire != "*":
            on.append(a.questionnaire_id == questionnaire)
        joined = b.join(a, sa.and_(*on))
        order = (a.answered_at, a.id)
        return read_window(
            session, joined, b, how, value=a.value, number=a.numeric_value, order=order
        )

    def pick(self, variable: TailoringVariable, row: Row | None) -> Any:
        assert isinstance(variable, EmaVariable)  # noqa: S101
        return pick_windowed(variable, row)
