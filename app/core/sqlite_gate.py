"""SQLite writers of one process take turns in arrival order.

SQLite has one writer at a time. A connection that finds the file locked polls it (the
busy handler sleeps, then tries again, for up to the busy timeout), so under a steady flow
of writes (phones syncing while the in-process worker fires due work) a waiter can lose the
race again and again to newcomers and end with "database is locked", although every
transaction is short. Here a write transaction first takes a place in a first-come
first-served queue of this process; the next writer is woken as soon as the previous one
commits or rolls back, and SQLite's own lock is then free or about to be (the busy timeout
still covers the moment of the commit, and other processes such as ``kairos`` commands).

Python's sqlite3 module begins a transaction only at the first write statement (reads run
outside it), so the gate is taken at that statement and given back when the transaction
ends: on commit, on rollback, and when the pool resets or drops the connection.
"""

import collections
import re
import threading
import weakref
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import ConnectionPoolEntry

_HOLDS = "kairos_write_gate"
_GATES: "weakref.WeakKeyDictionary[Engine, FairLock]" = weakref.WeakKeyDictionary()
_WRITE = re.compile(r"\s*(INSERT|UPDATE|DELETE|REPLACE|CREATE|DROP|ALTER)\b", re.IGNORECASE)


class FairLock:
    """A lock handed to waiters in the order they asked for it."""

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._held = False
        self._waiters: collections.deque[threading.Event] = collections.deque()

    def acquire(self, timeout: float) -> bool:
        with self._mutex:
            if not self._held and not self._waiters:
                self._held = True
                return True
            turn = threading.Event()
            self._waiters.append(turn)
        if turn.wait(timeout):
            return True
        with self._mutex:
            if turn.is_set():  # handed over just as the wait ran out
                return True
            self._waiters.remove(turn)
            return False

    @property
    def waiting(self) -> int:
        with self._mutex:
            return len(self._waiters)

    def release(self) -> None:
        with self._mutex:
            if self._waiters:
                self._waiters.popleft().set()  # stays held, by the next in line
            else:
                self._held = False


def _is_write(statement: str, context: Any) -> bool:
    if context is not None and (context.isinsert or context.isupdate or context.isdelete):
        return True
    return _WRITE.match(statement) is not None


def write_gate(engine: Engine) -> FairLock | None:
    """The gate of a SQLite engine (None for other engines)."""
    return _GATES.get(engine)


def install_write_gate(engine: Engine, *, timeout: float) -> FairLock:
    gate = _GATES[engine] = FairLock()

    @event.listens_for(engine, "before_cursor_execute")
    def take_turn(
        conn: Connection,
        _cursor: Any,
        statement: str,
        _parameters: Any,
        context: Any,
        _executemany: bool,
    ) -> None:
        info = conn.info
        if info.get(_HOLDS) or not _is_write(statement, context):
            return
        # Past the timeout, go on without a turn: SQLite's busy timeout decides.
        info[_HOLDS] = gate.acquire(timeout)

    def give_back(info: dict[Any, Any]) -> None:
        if info.pop(_HOLDS, False):
            gate.release()

    @event.listens_for(engine, "commit")
    def after_commit(conn: Connection) -> None:
        give_back(conn.info)

    @event.listens_for(engine, "rollback")
    def after_rollback(conn: Connection) -> None:
        give_back(conn.info)

    @event.listens_for(engine.pool, "reset")
    def on_reset(_dbapi: Any, record: ConnectionPoolEntry, _state: Any) -> None:
        give_back(record.info)

    @event.listens_for(engine.pool, "checkin")
    def on_checkin(_dbapi: Any, record: ConnectionPoolEntry | None) -> None:
        if record is not None:
            give_back(record.info)

    @event.listens_for(engine.pool, "invalidate")
    def on_invalidate(_dbapi: Any, record: ConnectionPoolEntry, _exc: Any) -> None:
        give_back(record.info)

    @event.listens_for(engine.pool, "close")
    def on_close(_dbapi: Any, record: ConnectionPoolEntry) -> None:
        give_back(record.info)

    return gate
