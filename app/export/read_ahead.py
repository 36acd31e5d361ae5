"""Reading one step ahead on a connection of its own, so that the database works on the
next page while the caller formats the current one (two cores instead of one).

PostgreSQL only: the reader's transaction imports the session's snapshot
(``pg_export_snapshot``), so it sees exactly what the session sees.
"""

import queue
import re
import threading
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session

from app.core.db import lift_statement_timeout

T = TypeVar("T")

_SNAPSHOT = re.compile(r"[0-9A-F]+-[0-9A-F]+(-[0-9]+)?")
_POLL_SECONDS = 0.1


class _End:
    """Marks the end of the items."""


def read_ahead(session: Session, read: Callable[[Connection], Iterator[T]]) -> Iterator[T]:
    """The items of ``read(connection)``, produced in a thread one item ahead of the
    caller. The reader's errors are raised here; closing this iterator stops the reader."""
    bind = session.get_bind()
    if not isinstance(bind, Engine):  # a session bound to one connection: no second one
        yield from read(session.connection())
        return
    snapshot = str(session.connection().scalar(sa.text("SELECT pg_export_snapshot()")))
    if _SNAPSHOT.fullmatch(snapshot) is None:  # inlined in SQL below: make sure of its shape
        raise ValueError(f"unexpected snapshot id {snapshot!r}")
    # One item waiting while the caller works on the current one: bounded memory.
    items: queue.Queue[Any] = queue.Queue(maxsize=1)
    stop = threading.Event()

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                items.put(item, timeout=_POLL_SECONDS)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            with bind.connect().execution_options(isolation_level="REPEATABLE READ") as reader:
                # First in the reader's transaction (rolled back at the end).
                reader.execute(sa.text(f"SET TRANSACTION SNAPSHOT '{snapshot}'"))
                lift_statement_timeout(reader)
                for item in read(reader):
                    if not put(item):
                        return
            put(_End())
        except BaseException as error:  # handed over to the caller, who raises it
            put(error)

    thread = threading.Thread(target=produce, name="export-read-ahead", daemon=True)
    thread.start()
    try:
        while True:
            item = items.get()
            if isinstance(item, _End):
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join()
