"""A `kairos worker` with a decider that delivers at every decision point (tests, benchmarks).

Settings come from the environment exactly as for `kairos worker` (KAIROS_DATABASE_URL,
KAIROS_FCM_ENDPOINT, KAIROS_WORKER_TICK_SECONDS, KAIROS_LEASE_SECONDS …). The real decision
engine is another package; this stand-in makes every decision point produce a push.
"""

import logging
import os
import sys
import uuid
from collections.abc import Sequence
from dataclasses import replace

from sqlalchemy.orm import Session

from app.core.clock import Clock, SystemClock
from app.core.config import load_settings
from app.core.db import create_db_engine, make_session_factory
from app.notifications.delivery import Delivery
from app.scheduling.models import ScheduledItem
from app.wiring import wire, worker_from_settings


def deliver_always(
    session: Session, clock: Clock, items: Sequence[ScheduledItem]
) -> list[Delivery | None]:
    return [
        Delivery(
            decision_id=uuid.uuid4(),
            option_id="walk",
            title="Time for a short walk",
            body="A few minutes of gentle movement can ease stiffness.",
            deep_link="kairos://exercise/walk",
        )
        for _ in items
    ]


def main() -> None:
    settings = load_settings()
    logging.basicConfig(level=os.environ.get("WORKER_LOG_LEVEL", "WARNING"), stream=sys.stderr)
    engine = create_db_engine(settings.database_url, pool_size=2)
    worker = worker_from_settings(
        make_session_factory(engine),
        SystemClock(),
        settings,
        wiring=replace(wire(settings), decider=deliver_always),
        worker_id=sys.argv[1] if len(sys.argv) > 1 else None,
    )
    worker.run_forever()


if __name__ == "__main__":
    main()
