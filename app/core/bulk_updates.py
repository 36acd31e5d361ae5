"""Setting many rows by id where most of them get the same values.

A burst settles hundreds of rows at once, and nearly all get the same outcome (`sent`, or
`done` with decision index 0). Grouping them by their new values turns hundreds of
single-row updates into a few `UPDATE … WHERE id IN (…)` statements.
"""

import uuid
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

# Keep IN lists well under every backend's bind-parameter limit.
CHUNK = 1000


def update_by_id(
    session: Session, model: Any, rows: Sequence[Mapping[str, Any]], key: str = "id"
) -> None:
    """``rows`` are ``{key: id, column: value, …}``; rows with equal values share a statement."""
    groups: dict[tuple[tuple[str, Any], ...], list[uuid.UUID]] = defaultdict(list)
    for row in rows:
        values = tuple(sorted((k, v) for k, v in row.items() if k != key))
        groups[values].append(row[key])
    column = getattr(model, key)
    for values, ids in groups.items():
        for start in range(0, len(ids), CHUNK):
            session.execute(
                sa.update(model)
                .where(column.in_(ids[start : start + CHUNK]))
                .values(dict(values))
                .execution_options(synchronize_session=False)
            )
