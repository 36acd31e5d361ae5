"""Updating many rows by id, grouped by their new values (both databases)."""

import uuid
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from app.core import bulk_updates
from app.core.bulk_updates import update_by_id
from app.studies.models import Study
from tests.conftest import World


def test_rows_with_equal_values_share_one_statement(world: World, engine: Engine) -> None:
    ids = [uuid.UUID(world.study(name=f"S{i}")["id"]) for i in range(5)]
    rows = [{"id": i, "name": "Same", "description": ""} for i in ids[:3]]
    rows += [{"id": ids[3], "name": "Other", "description": "x"}]
    seen: list[str] = []

    def record(*args: Any) -> None:
        seen.append(args[2])

    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        with world.session_factory() as session:
            update_by_id(session, Study, rows)
            session.commit()
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)
    updates = [s for s in seen if s.lstrip().upper().startswith("UPDATE")]
    assert len(updates) == 2
    with world.session_factory() as session:
        names = dict(session.execute(sa.select(Study.id, Study.name)).all())
    assert [names[i] for i in ids] == ["Same", "Same", "Same", "Other", "S4"]


def test_long_id_lists_are_split(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bulk_updates, "CHUNK", 2)
    ids = [uuid.UUID(world.study(name=f"S{i}")["id"]) for i in range(5)]
    with world.session_factory() as session:
        update_by_id(session, Study, [{"id": i, "name": "Renamed"} for i in ids])
        session.commit()
    with world.session_factory() as session:
        assert set(session.scalars(sa.select(Study.name))) == {"Renamed"}
