"""The tailoring-source seam: one entry per ``source:`` on both sides, nothing half-added."""

import typing
from typing import Literal, get_args

import pytest

from app.decision_rules.sources import READERS, reader_for
from app.protocols.document import TailoringVariable
from app.protocols.tailoring import (
    EnrollmentVariable,
    NotificationsVariable,
    ValueType,
    WearableVariable,
)
from app.protocols.tailoring_sources import (
    TAILORING_SOURCES,
    UnknownTailoringSourceError,
    source_of,
)


def _declared_sources() -> set[str]:
    """The ``source`` literals of every member of the TailoringVariable union."""
    union = get_args(TailoringVariable)[0]
    sources: set[str] = set()
    for member in get_args(union):
        annotation = typing.get_type_hints(member)["source"]
        assert typing.get_origin(annotation) is Literal
        sources.update(get_args(annotation))
    return sources


def test_every_declared_source_has_a_reader_and_upload_checks() -> None:
    declared = _declared_sources()
    assert declared == {"ema", "wearable", "notifications", "enrollment", "attribute"}
    assert set(READERS) == declared
    assert set(TAILORING_SOURCES) == declared
    assert all(reader.source == source for source, reader in READERS.items())


def test_an_unknown_source_is_an_error_not_a_silent_fallback() -> None:
    # A variable whose source has no entry (e.g. added to the union only) must not be read
    # by some other source's query, as the old fall-through counted pushes for it.
    day = EnrollmentVariable(name="day", type=ValueType.integer, source="enrollment")
    variable = day.model_copy(update={"source": "goals"})
    with pytest.raises(UnknownTailoringSourceError, match="goals"):
        reader_for(variable)
    with pytest.raises(UnknownTailoringSourceError, match="goals"):
        source_of(variable)


def test_queried_sources_share_a_query_by_shape() -> None:
    steps_3h, steps_7d = (
        WearableVariable.model_validate(
            {"name": name, "type": kind, "source": "wearable", "metric": "steps", **how}
        )
        for name, kind, how in (
            ("steps_3h", "integer", {"aggregate": "sum", "window": "3h"}),
            ("steps_7d", "number", {"aggregate": "mean", "window": "7d"}),
        )
    )
    sent = NotificationsVariable(
        name="sent", type="integer", source="notifications", window="today"
    )
    day = EnrollmentVariable(name="day", type="integer", source="enrollment")
    assert reader_for(steps_3h).shape(steps_3h) == reader_for(steps_7d).shape(steps_7d)
    assert reader_for(sent).shape(sent) == ("notifications",)
    assert reader_for(sent).pick(sent, None) == 0
    assert reader_for(day).shape(day) is None
