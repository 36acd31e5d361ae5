from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base

# A worker is active when it ticked this recently: what /readyz lists and what the
# kairos_workers_active metric counts.
ACTIVE_WORKER_WINDOW = timedelta(minutes=5)


class WorkerHeartbeat(Base):
    """One row per worker process, so operators can see that work is being picked up."""

    __tablename__ = "worker_heartbeats"

    worker_id: Mapped[str] = mapped_column(sa.String(120), primary_key=True)
    started_at: Mapped[datetime]
    last_tick_at: Mapped[datetime] = mapped_column(index=True)
