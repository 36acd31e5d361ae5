"""Exponential backoff with jitter: how every durable sender spaces its retries."""

import math
import random
from dataclasses import dataclass
from datetime import timedelta


@dataclass(frozen=True)
class Backoff:
    """The delay before retry number ``attempt`` (1 = after the first failure) doubles from
    ``first`` up to ``longest``, scaled by a random factor in ``jitter`` so that senders that
    failed together do not retry together."""

    first: timedelta
    longest: timedelta
    jitter: tuple[float, float] = (0.5, 1.0)

    def delay(
        self, attempt: int, rng: random.Random, *, at_least_seconds: float | None = None
    ) -> timedelta:
        """The wait; never shorter than ``at_least_seconds`` (a server's Retry-After)."""
        ceiling = min(self.longest, self.first * 2 ** max(attempt - 1, 0))
        wait: timedelta = ceiling * rng.uniform(*self.jitter)
        if at_least_seconds is not None:
            wait = max(wait, timedelta(microseconds=math.ceil(at_least_seconds * 1_000_000)))
        return wait
