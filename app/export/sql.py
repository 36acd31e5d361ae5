"""SQL helpers shared by the export's queries."""

from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import InstrumentedAttribute

AnySelect = sa.Select[*tuple[Any, ...]]

# Where the groups of a UUID's 32 hex digits start, and their lengths (8-4-4-4-12).
_UUID_GROUPS = ((1, 8), (9, 4), (13, 4), (17, 4), (21, 12))


def uuid_text(
    column: sa.ColumnElement[Any] | InstrumentedAttribute[Any],
    *,
    sqlite: bool,
) -> sa.ColumnElement[str]:
    """A UUID column as its canonical text (8-4-4-4-12 hex digits; NULL stays NULL): an
    export writes ids as text, and text costs less than ``uuid.UUID`` objects to load, hash
    and write."""
    if not sqlite:
        return sa.cast(column, sa.Text)
    # SQLite stores the 32 lowercase hex digits; || propagates NULL.
    digits = sa.type_coerce(column, sa.Text)
    groups = [sa.func.substr(digits, start, length) for start, length in _UUID_GROUPS]
    text: sa.ColumnElement[str] = groups[0]
    for group in groups[1:]:
        text = text.concat("-").concat(group)
    return sa.type_coerce(text, sa.Text)
