"""The API caps glibc's malloc arenas (app/core/malloc.py), unless told otherwise."""

import platform
import time

import pytest

from app.core.config import Settings
from app.core.malloc import MallocTrimmer, limit_malloc_arenas


def test_arenas_are_capped_on_glibc_unless_the_environment_says_otherwise(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    assert limit_malloc_arenas(0) is False
    assert limit_malloc_arenas(2) is (platform.libc_ver()[0] == "glibc")
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    assert limit_malloc_arenas(2) is False


def test_two_arenas_and_a_trim_every_ten_seconds_by_default() -> None:
    settings = Settings()
    assert (settings.malloc_arena_max, settings.malloc_trim_seconds) == (2, 10.0)


def test_the_trimmer_runs_until_stopped() -> None:
    trimmer = MallocTrimmer(0.01)
    started = trimmer.start()
    assert started is (platform.libc_ver()[0] == "glibc")
    time.sleep(0.05)
    trimmer.stop()
    assert trimmer._thread is None
    assert MallocTrimmer(0).start() is False
