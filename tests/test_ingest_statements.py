"""Ingestion does its work in a fixed number of statements, whatever the size of the batch.

Counted on the service's own engine, around one request. The event listeners (scheduling's
reaction to ``ema_submitted``) are replaced by a recorder here: their statements are theirs
to bound; what is counted is the ingestion path (authentication, protocol, responses,
answers).
"""

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from app.core import events
from app.protocols.timing import Event
from tests.conftest import World, is_postgres_run
from tests.support.ingest import Phone, ema_prompt, morning, pain_study, phone, recording


@pytest.fixture
def me(world: World) -> Phone:
    return phone(world, pain_study(world))


@contextmanager
def only_recorded_listeners() -> Iterator[None]:
    """Set the subscribed listeners aside for the block (restored afterwards)."""
    single = {kind: list(found) for kind, found in events._listeners.items()}
    batch = {kind: list(found) for kind, found in events._batch_listeners.items()}
    events._listeners.clear()
    events._batch_listeners.clear()
    try:
        with recording(Event.ema_submitted):
            yield
    finally:
        events._listeners.clear()
        events._listeners.update(single)
        events._batch_listeners.clear()
        events._batch_listeners.update(batch)


@contextmanager
def counting(engine: Engine) -> Iterator[list[str]]:
    statements: list[str] = []

    def record(*args: Any) -> None:
        statements.append(args[2])

    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)


def _statements(world: World, me: Phone, items: list[dict[str, Any]]) -> list[str]:
    engine: Engine = world.client.app.state.engine  # type: ignore[attr-defined]
    with only_recorded_listeners(), counting(engine) as statements:
        me.post("ema-responses", items)
    return statements


def _batch(world: World, size: int) -> list[dict[str, Any]]:
    now = world.clock.now()
    return [morning(now - timedelta(seconds=i)) for i in range(size)]


def test_a_batch_of_new_valid_responses_takes_the_same_statements_at_any_size(
    world: World, me: Phone
) -> None:
    me.post("ema-responses", _batch(world, 1))  # the protocol is read once, then kept
    counts = {size: len(_statements(world, me, _batch(world, size))) for size in (1, 20, 200)}
    assert counts[1] == counts[20] == counts[200], counts
    # The token with its participant, then the responses with their answers: one statement
    # on PostgreSQL, two elsewhere (the commit is not a statement).
    assert counts[1] == (2 if is_postgres_run() else 3), counts


def test_replays_and_rejections_add_one_lookup_not_one_per_item(world: World, me: Phone) -> None:
    me.post("ema-responses", _batch(world, 1))
    counts = {}
    for size in (4, 40):
        items = _batch(world, size)
        me.post("ema-responses", items[: size // 2])
        items[-1]["answers"]["pain"] = 11
        counts[size] = len(_statements(world, me, items))  # half replayed, one bad
    assert counts[4] == counts[40], counts


def test_prompts_are_looked_up_once_per_batch(world: World, me: Phone) -> None:
    me.post("ema-responses", _batch(world, 1))
    counts = {}
    for size in (1, 10):
        items = _batch(world, size)
        for item in items:
            item["prompt_id"] = str(ema_prompt(world, me))
        counts[size] = len(_statements(world, me, items))
    # Answering prompts updates them: one UPDATE per prompt by the ORM, batched by psycopg
    # into one executemany.
    assert counts[1] == counts[10], counts
