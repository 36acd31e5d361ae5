"""Dependencies that hand each request its settings, clock and database session.

They are ``async`` because they never block: FastAPI runs a plain ``def`` dependency in
the thread pool, one thread hop (and its CPU) per dependency per request.
"""

import threading
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from sqlalchemy.orm import Session

from app.core.clock import Clock
from app.core.config import Settings
from app.core.pagination import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE
from app.notifications.providers import PushProvider


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_clock(request: Request) -> Clock:
    clock: Clock = request.app.state.clock
    return clock


async def get_session(request: Request) -> AsyncIterator[Session]:
    # Routes commit explicitly before they answer: accepted means committed. Opening a
    # session does no I/O (it connects on first use) and closing one whose transaction has
    # ended returns nothing to the pool; only a rollback talks to the database, so only
    # that goes to the thread pool, off the event loop.
    session: Session = request.app.state.session_factory()
    try:
        yield session
    finally:
        if session.in_transaction():
            await run_in_threadpool(session.close)
        else:
            session.close()


SessionDep = Annotated[Session, Depends(get_session)]
ClockDep = Annotated[Clock, Depends(get_clock)]
SettingsDep = Annotated[Settings, Depends(get_settings)]

LimitQuery = Annotated[
    int,
    Query(ge=1, le=MAX_PAGE_SIZE, description="How many items to return at most."),
]
DEFAULT_LIMIT = DEFAULT_PAGE_SIZE

_provider_lock = threading.Lock()


def get_push_provider(request: Request) -> PushProvider:
    """The push channel the settings ask for, made on first use: an API process that never
    sends a test push never loads firebase-admin."""
    with _provider_lock:
        provider: PushProvider | None = getattr(request.app.state, "push_provider", None)
        if provider is None:
            from app.notifications.provider_setup import provider_from_settings

            provider = provider_from_settings(request.app.state.settings)
            request.app.state.push_provider = provider
        return provider


PushProviderDep = Annotated[PushProvider, Depends(get_push_provider)]
