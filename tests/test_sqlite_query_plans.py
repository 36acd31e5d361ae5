"""Queries that run on every tick or upload read a bounded range of their index on SQLite.

SQLite keeps no statistics here (nothing runs ANALYZE), so it picks an index by its shape:
a query that can be answered through an index on ``status`` alone, or through an index range
open at one end, reads more rows every day a study runs. These tests read SQLite's plan
for the statements as the code builds them.
"""

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from app.scheduling.dispatch import _EXPIRE_ON_SQLITE
from app.sensing.ingest import _stored_statement


def _plan(engine: Engine, stmt: sa.ClauseElement) -> str:
    if engine.dialect.name != "sqlite":
        pytest.skip("SQLite's planner")
    # The plan does not depend on the values: every parameter is NULL, lists have one.
    sql = str(stmt.compile(dialect=engine.dialect, compile_kwargs={"render_postcompile": True}))
    with engine.connect() as conn:
        rows = conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}", (None,) * sql.count("?")).all()
    return " | ".join(str(row[-1]) for row in rows)


def test_the_expiry_sweep_reads_only_unanswered_prompts(engine: Engine) -> None:
    plan = _plan(engine, _EXPIRE_ON_SQLITE)
    assert "ix_scheduled_items_unanswered" in plan


def test_stored_summaries_are_read_from_a_closed_range(engine: Engine) -> None:
    stmt = _stored_statement().params(
        participant_id=None, metrics=["steps"], first_start=None, last_end=None
    )
    plan = _plan(engine, stmt)
    assert "end_at>? AND end_at<?" in plan
