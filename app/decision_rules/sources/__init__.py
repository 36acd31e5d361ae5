"""Tailoring sources on the database side: one reader per ``source:`` of the protocol.

Add a source by writing its declaration (``app/protocols/tailoring.py``) and its checks
(``app/protocols/tailoring_sources.py``), a reader module here, and registering the reader
in ``READERS``; a test holds the two registries equal.
"""

from app.decision_rules.sources.attribute import AttributeReader
from app.decision_rules.sources.base import Row, SourceReader, Subject
from app.decision_rules.sources.ema import EmaReader
from app.decision_rules.sources.enrollment import EnrollmentReader
from app.decision_rules.sources.notifications import NotificationsReader
from app.decision_rules.sources.wearable import WearableReader
from app.protocols.document import TailoringVariable
from app.protocols.tailoring_sources import UnknownTailoringSourceError

READERS: dict[str, SourceReader] = {
    reader.source: reader
    for reader in (
        EmaReader(),
        WearableReader(),
        NotificationsReader(),
        EnrollmentReader(),
        AttributeReader(),
    )
}


def reader_for(variable: TailoringVariable) -> SourceReader:
    try:
        return READERS[variable.source]
    except KeyError:
        raise UnknownTailoringSourceError(variable.source) from None


__all__ = ["READERS", "Row", "SourceReader", "Subject", "UnknownTailoringSourceError", "reader_for"]
