"""Dependencies that hand each request its settings, clock and database session."""

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Query, Request
from sqlalchemy.orm import Session

from app.core.clock import Clock
from app.core.config import Settings
from app.core.pagination import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_clock(request: Request) -> Clock:
    clock: Clock = request.app.state.clock
    return clock


def get_session(request: Request) -> Iterator[Session]:
    # Routes commit explicitly before they answer: accepted means committed.
    with request.app.state.session_factory() as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]
ClockDep = Annotated[Clock, Depends(get_clock)]
SettingsDep = Annotated[Settings, Depends(get_settings)]

LimitQuery = Annotated[
    int,
    Query(ge=1, le=MAX_PAGE_SIZE, description="How many items to return at most."),
]
DEFAULT_LIMIT = DEFAULT_PAGE_SIZE
