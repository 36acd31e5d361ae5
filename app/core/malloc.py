"""Giving a threaded server's freed memory back to the system under glibc's allocator.

glibc gives a thread that meets contention on the allocator an arena of its own (up to 8
per core), and gives memory back to the system only from the top of a heap: pages freed in
the middle stay resident until ``malloc_trim`` returns them. After a burst (a large
export, a big batch) an API process would keep that memory. Two arenas and a trim every
few seconds give it back; under steady ingestion they save a MiB or two. See
docs/deployment.md.
"""

import ctypes
import logging
import os
import platform
import threading
from typing import Any

logger = logging.getLogger(__name__)

# From glibc's <malloc.h>.
M_ARENA_MAX = -8


def _glibc() -> Any | None:
    """The process's C library when it is glibc (musl and macOS allocate differently)."""
    if platform.libc_ver()[0] != "glibc":
        return None
    try:
        return ctypes.CDLL(None)
    except OSError:  # pragma: no cover - a glibc process can always open itself
        return None


def limit_malloc_arenas(count: int) -> bool:
    """Cap glibc's malloc arenas at ``count``; returns whether it did.

    Nothing happens for ``count`` 0, off glibc, or when ``MALLOC_ARENA_MAX`` is in the
    environment: glibc has applied it at process start, and the operator's choice wins.
    Best called before the process starts its threads.
    """
    libc = _glibc() if count > 0 and "MALLOC_ARENA_MAX" not in os.environ else None
    if libc is None:
        return False
    libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    libc.mallopt.restype = ctypes.c_int
    if libc.mallopt(M_ARENA_MAX, count) != 1:  # pragma: no cover - glibc accepts any count
        logger.warning("mallopt(M_ARENA_MAX, %d) failed; arenas left at glibc's default", count)
        return False
    return True


class MallocTrimmer:
    """A daemon thread that calls glibc's ``malloc_trim(0)`` every ``seconds``.

    A trim takes well under a millisecond on a service-sized heap and does not hold the
    GIL. Off glibc, or with ``seconds`` 0, ``start`` does nothing.
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> bool:
        libc = _glibc() if self.seconds > 0 else None
        if libc is None:
            return False
        trim = libc.malloc_trim
        trim.argtypes = [ctypes.c_size_t]
        trim.restype = ctypes.c_int

        def run() -> None:
            while not self._stop.wait(self.seconds):
                trim(0)

        self._thread = threading.Thread(target=run, name="malloc-trim", daemon=True)
        self._thread.start()
        return True

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
